/// The kinds of association Sutra knows. Stored as one byte; an unknown value is refused, never guessed. One type
/// for the server and the SDK.
public enum AssociationType: UInt8, Sendable, Hashable, CaseIterable, Codable {
    case semantic = 0, causal = 1, temporal = 2, hierarchical = 3, compositional = 4
}

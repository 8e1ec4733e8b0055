/// Which concepts a vector search may answer: thresholds on strength and confidence, and "has an association of
/// this type" (in either direction); every condition given must hold. The server applies it inside the search —
/// rejected vectors are walked through but never held as results — so a filtered search returns k answers
/// whenever k concepts pass. One type for the server and the SDK.
public struct SearchFilter: Sendable, Hashable {
    /// Strength at least this (0…1).
    public var minStrength: Float?
    /// Confidence at least this (0…1).
    public var minConfidence: Float?
    /// Has an association of this type, in either direction.
    public var associationType: AssociationType?

    public init(minStrength: Float? = nil, minConfidence: Float? = nil, associationType: AssociationType? = nil) {
        self.minStrength = minStrength
        self.minConfidence = minConfidence
        self.associationType = associationType
    }

    /// No condition at all.
    public var isEmpty: Bool { minStrength == nil && minConfidence == nil && associationType == nil }
}

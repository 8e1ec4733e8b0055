/// What a client may do. Each role includes every role below it: `admin` ⊃ `write` ⊃ `read`.
///
/// - `read`: concept, neighbour, path and vector reads, the cluster view.
/// - `write`: `read`, plus puts, deletes, associations and batches.
/// - `admin`: `write`, plus flush, leadership transfer and every `/v1/admin/...` route.
public enum Role: Int, Sendable, Hashable, Comparable, CaseIterable, CustomStringConvertible {
    case read = 1
    case write = 2
    case admin = 3

    /// The role a tokens file or a command line names (`read`, `write`, `admin`), nil for anything else.
    public init?(name: String) {
        switch name {
        case "read": self = .read
        case "write": self = .write
        case "admin": self = .admin
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .read: return "read"
        case .write: return "write"
        case .admin: return "admin"
        }
    }

    /// Whether a client holding this role may do what needs `needed`.
    public func allows(_ needed: Role) -> Bool { self >= needed }

    public static func < (a: Role, b: Role) -> Bool { a.rawValue < b.rawValue }
}

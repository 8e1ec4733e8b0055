/// Identifies one replica (a node) inside a Raft group. `0` means "nobody".
public typealias NodeID = UInt64
/// A Raft term. Terms only grow.
public typealias Term = UInt64
/// A position in the replicated log; the first real entry has index 1.
public typealias LogIndex = UInt64

/// The reserved "nobody" node id (no vote, no known leader).
public let noNode: NodeID = 0

/// What an entry's payload means to the core.
public enum EntryKind: UInt8, Sendable, Equatable {
    /// Application data (or an empty entry a new leader appends to commit its term).
    case normal = 0
    /// A serialized `ConfChange`; the core applies it to the membership when the entry is applied.
    case confChange = 1
}

/// One log entry. Entries are immutable once written: the same (index, term) always carries the same payload.
public struct Entry: Sendable, Equatable {
    public var term: Term
    public var index: LogIndex
    public var kind: EntryKind
    public var data: [UInt8]

    public init(term: Term, index: LogIndex, kind: EntryKind = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }

    /// Approximate encoded size, used to bound message and batch sizes.
    @inlinable public var byteSize: Int { data.count + 24 }
}

/// The state a replica must make durable before it sends any message that depends on it.
public struct HardState: Sendable, Equatable {
    public var term: Term
    public var vote: NodeID
    public var commit: LogIndex

    public init(term: Term = 0, vote: NodeID = noNode, commit: LogIndex = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }

    public static let empty = HardState()
    public var isEmpty: Bool { self == .empty }
}

/// The membership of a group: voters decide elections and commits, learners only receive the log.
/// Both lists are kept sorted and disjoint.
public struct ConfState: Sendable, Equatable {
    public private(set) var voters: [NodeID]
    public private(set) var learners: [NodeID]

    public init(voters: [NodeID] = [], learners: [NodeID] = []) {
        let v = Array(Set(voters)).sorted()
        let l = Array(Set(learners).subtracting(v)).sorted()
        self.voters = v
        self.learners = l
    }

    public var isEmpty: Bool { voters.isEmpty && learners.isEmpty }
    public func isVoter(_ id: NodeID) -> Bool { voters.contains(id) }
    public func isLearner(_ id: NodeID) -> Bool { learners.contains(id) }
    public func contains(_ id: NodeID) -> Bool { isVoter(id) || isLearner(id) }
    /// Every member, voters first, each list sorted.
    public var members: [NodeID] { voters + learners }
}

/// Where a snapshot sits in the log and which membership it carries.
public struct SnapshotMetadata: Sendable, Equatable {
    public var index: LogIndex
    public var term: Term
    public var confState: ConfState

    public init(index: LogIndex = 0, term: Term = 0, confState: ConfState = ConfState()) {
        self.index = index
        self.term = term
        self.confState = confState
    }
}

/// A state-machine image at `metadata.index`. `data` is opaque to the core.
public struct Snapshot: Sendable, Equatable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata = SnapshotMetadata(), data: [UInt8] = []) {
        self.metadata = metadata
        self.data = data
    }

    public var isEmpty: Bool { metadata.index == 0 }
}

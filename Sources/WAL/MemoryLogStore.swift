import Raft

/// A node's durable logs held in memory, for the cluster simulation: the same `GroupLog`s, fed the same records
/// by the same rules as `LogEngine` (a batch's compactions resolved when it is prepared, its records applied to
/// the groups only when it completes), without files. What a process crash loses is exactly the write that was
/// prepared and not completed; everything completed survives, as it would on disk.
///
/// One write in flight at a time, like the engine. Not thread-safe.
public final class MemoryLogStore {
    private var groups: [UInt64: GroupLog] = [:]
    private var snapshotData: [UInt64: (metadata: SnapshotMetadata, data: [UInt8])] = [:]
    private var inFlight: PreparedMemoryWrite?
    /// Completed writes (for the simulation's figures).
    public private(set) var completedWrites: UInt64 = 0

    public init() {}

    /// The durable log of group `id` (an empty one if it never wrote anything).
    public func group(_ id: UInt64) -> GroupLog {
        if let g = groups[id] { return g }
        let g = GroupLog(group: id)
        g.openSnapshotImage = { [unowned self] (m) throws(WALError) in
            guard let s = self.snapshotData[id], s.metadata == m else {
                throw WALError.badSnapshot(path: "memory snapshot of group \(id)", detail: "no snapshot at index \(m.index)")
            }
            return SnapshotImage(group: id, metadata: m, bytes: s.data)
        }
        g.makeSpool = { (m, total) in SnapshotSpool.inMemory(group: id, metadata: m, total: total) }
        groups[id] = g
        return g
    }

    /// Encodes nothing, but fixes the batch's records as the engine would at this moment.
    public func prepare(_ batch: WriteBatch) -> PreparedMemoryWrite {
        precondition(inFlight == nil, "a write is already in flight: complete it first")
        let w = PreparedMemoryWrite(records: batch.records(group: group), snapshots: batch.snapshotFiles)
        inFlight = w
        return w
    }

    /// The write is durable: its snapshots and records become visible through the groups.
    public func complete(_ w: PreparedMemoryWrite) {
        precondition(inFlight === w, "complete of a write that is not in flight")
        inFlight = nil
        for f in w.snapshots where f.snapshot.metadata.index > 0 {
            precondition(f.adopting == nil, "the memory store spools in memory: nothing to adopt")
            let (g, s) = (f.group, f.snapshot)
            if (snapshotData[g]?.metadata.index ?? 0) <= s.metadata.index { snapshotData[g] = (s.metadata, s.data) }
        }
        for r in w.records {
            do { try group(r.group).apply(r) } catch {
                preconditionFailure("memory log: a durable record does not fit group \(r.group): \(error)")
            }
        }
        completedWrites += 1
    }

    /// The process died: the write in flight never happened.
    public func crash() { inFlight = nil }

    /// Whether a write is in flight.
    public var writing: Bool { inFlight != nil }
}

/// A write prepared by `MemoryLogStore`, waiting to be completed (or lost in a crash).
public final class PreparedMemoryWrite {
    let records: [WALRecord]
    let snapshots: [SnapshotFileWrite]
    init(records: [WALRecord], snapshots: [SnapshotFileWrite]) {
        self.records = records
        self.snapshots = snapshots
    }
}

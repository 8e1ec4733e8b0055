import Raft
import WAL

/// Everything `NodeCore` asks of the world. The production driver (`NodeServer`, libuv) and the cluster
/// simulation (`RaftSim/Cluster`) implement it; the core reaches sockets, disks and files only through here,
/// so the simulation runs the very turn logic a node runs.
///
/// Every call is made on the core's one thread and returns at once: the long-running ones (`startWrite`) report
/// back by calling the core (`NodeCore.writeCompleted`) later, never from inside the call.
package protocol NodeIO: AnyObject {
    /// Queues `frame` to `peer` for the end of the turn. False when the link is not established (nothing
    /// queued): the core treats the peer as unreachable for this message.
    func send(_ frame: PeerFrame, to peer: NodeID) -> Bool
    /// Sends everything queued this turn (called once at the end of each turn).
    func flushPeers()
    /// Whether the link to `peer` is established and the peer was heard recently.
    func isConnected(_ peer: NodeID) -> Bool
    /// The state of the link to `peer` for `/v1/cluster`: "connected", "connecting", "unreachable", or
    /// "refused: <why>" (e.g. its configuration disagrees with this node's).
    func linkStatus(of peer: NodeID) -> String
    /// The peer-wire version the link to `peer` speaks (0: not established).
    func wireVersion(of peer: NodeID) -> UInt32
    /// Where `peer`'s clients connect, as it said in its hello (nil: not heard yet).
    func clientAddresses(of peer: NodeID) -> (client: String, http: String)?
    /// Starts making `batch` durable. Exactly one write is in flight at a time; when it is durable the driver
    /// applies it to the group logs and calls `NodeCore.writeCompleted(tookNanos:)`; when it finds no space (and
    /// nothing else went wrong) it calls `NodeCore.writeStalled` instead and keeps the write for `retryWrite`.
    func startWrite(_ batch: WriteBatch)
    /// The write in flight failed for lack of space and the driver reported it (`NodeCore.writeStalled`): try
    /// the same write again, unchanged; it reports back as `startWrite` does.
    func retryWrite()
    /// Runs `work` off the loop (the driver's thread pool), then `done` with its result on the core's thread, later
    /// — never from inside the call. Nothing of `work` may touch the core. A process that dies first never runs
    /// `done`. The simulation runs `work` at once and `done` a few steps later.
    func runOffLoop<T: Sendable>(_ work: @escaping @Sendable () -> T, then done: @escaping (T) -> Void)
    /// Saves the vector index beside the snapshots (flush, graceful shutdown); may block.
    func saveVectorIndex()
    /// Graceful shutdown has handed its leaderships away (or given up): close every handle.
    func shutdownFinished()
    /// The cluster map names these nodes (this one left out) at these peer addresses (`host:port`): link to the
    /// new ones, use a changed address from the next dial, drop links to nodes it no longer names.
    func peersChanged(_ peers: [NodeID: String])
}

extension NodeIO {
    /// Drivers without handshake refusals (the simulation): connected or not.
    package func linkStatus(of peer: NodeID) -> String { isConnected(peer) ? "connected" : "unreachable" }
}

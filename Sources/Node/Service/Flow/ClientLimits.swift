/// The bounds every client connection lives within (binary and HTTP ports alike), set by `sutra-node` flags.
///
/// Together they make a client's cost to the node bounded: memory (in-flight requests, unsent answers, partly
/// received requests), loop time (requests started per connection per loop turn) and descriptors (a connection
/// cap below the process's descriptor limit, keeping a reserve for the WAL, snapshots and peer links).
public struct ClientLimits: Sendable, Equatable {
    /// Client connections open at once, both ports together (lowered to fit the descriptor limit).
    public var maxConnections = 4096
    /// Requests of one connection being served at once; further pipelined requests wait unread.
    public var maxInFlightPerConnection = 128
    /// Answers of one connection not yet taken by the kernel, in bytes, before the node stops reading from it.
    public var maxUnsentBytesPerConnection = 8 << 20
    /// Requests one connection may start per loop turn (fairness: the loop polls peers between turns).
    public var requestsPerTurn = 32
    /// Bytes of partly received requests the node holds, all connections together.
    public var partialRequestBudget = 1 << 30
    /// Time from a request's first byte to its last (slow senders are answered 408 / closed).
    public var requestTimeoutMs = 30_000
    /// A connection with nothing in flight and no traffic this long is closed; 0 never.
    public var idleTimeoutMs = 300_000
    /// Descriptors kept free of client connections for the WAL, snapshots, the vector index and peer links.
    public var reservedDescriptors = 128
    /// Request bodies/frames at least this big are decoded on the thread pool, not the loop.
    public var offLoopDecodeBytes = 64 << 10

    public init() {}

    /// The first setting out of range, as one line naming the flag; nil when all are valid.
    public func problem(maxFrameBytes: Int) -> String? {
        if !(1...1_000_000).contains(maxConnections) { return "--client-max-connections \(maxConnections) is not in 1…1000000" }
        if !(1...65_536).contains(maxInFlightPerConnection) { return "--client-max-in-flight \(maxInFlightPerConnection) is not in 1…65536" }
        if !((64 << 10)...(1 << 30)).contains(maxUnsentBytesPerConnection) { return "--client-max-unsent-bytes \(maxUnsentBytesPerConnection) is not in 65536…1073741824" }
        if !(1...10_000).contains(requestsPerTurn) { return "--client-requests-per-turn \(requestsPerTurn) is not in 1…10000" }
        if partialRequestBudget < maxFrameBytes || partialRequestBudget > (1 << 40) {
            return "--client-partial-request-budget \(partialRequestBudget) must lie between --max-frame-bytes (\(maxFrameBytes)) and 1099511627776"
        }
        if !(100...3_600_000).contains(requestTimeoutMs) { return "--client-request-timeout-ms \(requestTimeoutMs) is not in 100…3600000" }
        if idleTimeoutMs != 0 && !(1000...86_400_000).contains(idleTimeoutMs) { return "--client-idle-timeout-ms \(idleTimeoutMs) is not 0 or in 1000…86400000" }
        if !(16...100_000).contains(reservedDescriptors) { return "--reserved-descriptors \(reservedDescriptors) is not in 16…100000" }
        return nil
    }
}

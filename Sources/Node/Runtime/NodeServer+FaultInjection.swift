/// Test-only fault hooks for the chaos runner, refused unless the node was started with
/// `--enable-fault-injection`.
extension NodeServer {
    /// The longest fsync delay a request may set, milliseconds.
    static let maxFsyncDelayMs = 10_000

    /// Makes every WAL write sleep `ms` before its fdatasync from the next write on (0: a healthy disk). Only
    /// the speed changes: writes are still acknowledged after they are durable.
    func setFsyncDelay(ms: Int) -> Result<ClientReply, ClientError> {
        guard config.faultInjection else {
            return .failure(ClientError(.invalidArgument, "fault injection is off on this node; it is a test-only switch (--enable-fault-injection)"))
        }
        guard (0...NodeServer.maxFsyncDelayMs).contains(ms) else {
            return .failure(ClientError(.invalidArgument, "ms is \(ms); allowed: 0…\(NodeServer.maxFsyncDelayMs)"))
        }
        if ms != fsyncDelayMs {
            if ms > 0 {
                logger.warning("fault injection: every WAL write now sleeps \(ms) ms before its fdatasync (a slow disk)")
            } else {
                logger.notice("fault injection: the WAL's fsync delay is off again")
            }
        }
        fsyncDelayMs = ms
        return .success(.fsyncDelay(ms: ms))
    }
}

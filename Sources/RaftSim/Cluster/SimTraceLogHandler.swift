import Logging

/// Prints a simulated node's log lines, stamped with the simulated tick, among the trace of a replayed seed
/// (`sutra-sim --cluster --seed N --trace`): what the node decided, next to what happened to it.
/// `@unchecked Sendable`: its clock reads the simulation, which runs a seed on one thread from start to end;
/// the handler never leaves that thread.
struct SimTraceLogHandler: LogHandler, @unchecked Sendable {
    let label: String
    let tick: () -> UInt64
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    init(label: String, tick: @escaping () -> UInt64) {
        self.label = label
        self.tick = tick
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        print("t=\(tick()) \(label) \(event.level): \(event.message)")
    }
}

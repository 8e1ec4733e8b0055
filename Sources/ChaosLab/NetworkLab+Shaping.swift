/// How to degrade everything one node sends (to peers and to clients alike): delay, jitter, loss (tc netem)
/// or a rate limit (tc tbf when no delay or loss is asked).
public struct LinkShape: Sendable, Equatable, Codable, CustomStringConvertible {
    public var delayMs: Int
    public var jitterMs: Int
    public var lossPercent: Double
    /// 0: no rate limit.
    public var rateKbit: Int

    public init(delayMs: Int = 0, jitterMs: Int = 0, lossPercent: Double = 0, rateKbit: Int = 0) {
        self.delayMs = delayMs
        self.jitterMs = jitterMs
        self.lossPercent = lossPercent
        self.rateKbit = rateKbit
    }

    var needsNetem: Bool { delayMs > 0 || jitterMs > 0 || lossPercent > 0 }

    /// The `tc qdisc replace dev eth0 root …` arguments after `root`.
    var qdiscArguments: [String] {
        if needsNetem {
            var a = ["netem"]
            if delayMs > 0 || jitterMs > 0 { a += ["delay", "\(delayMs)ms"] + (jitterMs > 0 ? ["\(jitterMs)ms"] : []) }
            if lossPercent > 0 { a += ["loss", "\(lossPercent)%"] }
            if rateKbit > 0 { a += ["rate", "\(rateKbit)kbit"] }
            return a
        }
        return ["tbf", "rate", "\(max(rateKbit, 8))kbit", "burst", "32kbit", "latency", "400ms"]
    }

    public var description: String {
        var parts: [String] = []
        if delayMs > 0 || jitterMs > 0 { parts.append("delay \(delayMs)±\(jitterMs) ms") }
        if lossPercent > 0 { parts.append("loss \(lossPercent)%") }
        if rateKbit > 0 { parts.append("rate \(rateKbit) kbit/s") }
        return parts.isEmpty ? "no shaping" : parts.joined(separator: ", ")
    }
}

/// Link shaping with tc on a node's `eth0` (inside its namespace, so it shapes what that node sends).
/// Delay and loss need the kernel's netem qdisc: where it is missing (as on the machine this was built on)
/// `shape` throws `LabError.unavailable` saying so; a pure rate limit uses tbf.
extension NetworkLab {
    /// Replaces node `node`'s egress qdisc with `shape`.
    public func shape(_ node: Int, _ shape: LinkShape) throws {
        let m = try member(node)
        try lock.withLock {
            guard !destroyed else { throw LabError.invalid("the lab was destroyed") }
            let r = Shell.run(["tc", "-n", m.namespace, "qdisc", "replace", "dev", "eth0", "root"] + shape.qdiscArguments)
            guard r.ok else {
                if r.output.contains("qdisc kind is unknown") {
                    throw LabError.unavailable("the kernel has no \(shape.qdiscArguments[0]) qdisc (tc said: \(r.output.trimmingCharacters(in: .whitespacesAndNewlines))); \(shape) cannot be applied")
                }
                throw LabError.command("tc qdisc replace (node \(node)): \(shape)", r.description)
            }
            shaped.insert(node)
        }
    }

    /// Nodes whose egress is currently shaped.
    public var shapedNodes: Set<Int> { lock.withLock { shaped } }

    /// Restores node `node`'s default qdisc.
    public func unshape(_ node: Int) {
        guard let m = try? member(node) else { return }
        lock.withLock {
            guard shaped.contains(node), !destroyed else { return }
            _ = Shell.run(["tc", "-n", m.namespace, "qdisc", "del", "dev", "eth0", "root"])
            shaped.remove(node)
        }
    }

    /// Restores every node's default qdisc.
    public func unshapeAll() {
        for n in nodes { unshape(n) }
    }
}

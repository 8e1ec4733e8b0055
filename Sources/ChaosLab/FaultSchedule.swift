import Raft
/// What a schedule may contain and how it is paced.
public struct ScheduleOptions: Codable, Sendable, Equatable {
    /// Total length of the run, seconds.
    public var duration: Double
    /// The kinds to draw from (uniformly); empty: no faults.
    public var kinds: [FaultKind]
    /// Node ids.
    public var nodes: [Int]
    /// Shard count (leader-targeted faults pick a shard below it).
    public var shards: Int
    /// How long one fault lasts, seconds (a rolling restart is given `rollingRestartPerNode` per node instead).
    public var faultDuration: ClosedRange<Double> = 2...5
    /// Quiet time between one fault's heal and the next fault, seconds.
    public var quietGap: ClosedRange<Double> = 1...3
    /// Quiet time before the first fault, seconds.
    public var leadIn: Double = 1
    /// Quiet time at the end: every fault is planned to heal at least this long before `duration`.
    public var tail: Double = 2
    /// The time planned per node for a rolling restart, seconds.
    public var rollingRestartPerNode: Double = 4
    /// The fsync delay a slow disk adds, milliseconds (drawn per fault).
    public var slowDiskDelayMs: ClosedRange<Int> = 50...500

    public init(duration: Double, kinds: [FaultKind], nodes: [Int] = [1, 2, 3], shards: Int = 4) {
        self.duration = duration
        self.kinds = kinds
        self.nodes = nodes
        self.shards = shards
    }
}

/// A timeline of faults generated from a seed: the same seed and options always give the same schedule (the
/// generator is `SplitMix64` and every quantity is drawn in whole milliseconds). Faults never overlap: each is
/// followed by a quiet gap, and all heal before the tail of the run.
public struct FaultSchedule: Codable, Sendable, Equatable, CustomStringConvertible {
    public var seed: UInt64
    public var options: ScheduleOptions
    public var steps: [FaultStep]

    public init(seed: UInt64, options: ScheduleOptions, steps: [FaultStep]) {
        self.seed = seed
        self.options = options
        self.steps = steps
    }

    /// Generates the schedule for `seed`.
    public static func generate(seed: UInt64, options o: ScheduleOptions) -> FaultSchedule {
        var rng = SplitMix64(seed: seed)
        var steps: [FaultStep] = []
        let nodes = o.nodes.sorted()
        guard !o.kinds.isEmpty, !nodes.isEmpty else { return FaultSchedule(seed: seed, options: o, steps: []) }
        func ms(_ s: Double) -> Int { Int((s * 1000).rounded()) }
        func draw(_ r: ClosedRange<Double>) -> Int { rng.inRange(ms(r.lowerBound)...max(ms(r.lowerBound), ms(r.upperBound))) }
        let end = ms(o.duration - o.tail)
        let minFault = ms(o.faultDuration.lowerBound)
        var t = ms(o.leadIn)
        while t < end {
            let kind = rng.pick(o.kinds)
            var duration = kind == .rollingRestart ? ms(o.rollingRestartPerNode) * nodes.count : draw(o.faultDuration)
            if t + duration > end {
                guard kind != .rollingRestart, end - t >= minFault else { break }
                duration = end - t
            }
            let order = rng.shuffled(nodes)
            let someNode = rng.pick(nodes)
            let shard = rng.below(max(1, o.shards))
            let byLeader = rng.below(2) == 0
            var direction: CutDirection?
            var delayMs: Int?
            var interruption: Int?
            let target: FaultTarget
            switch kind {
            case .slowDisk:
                target = byLeader ? .leaderOf(shard: shard, fallback: someNode) : .node(someNode)
                delayMs = rng.inRange(o.slowDiskDelayMs)
            case .kill, .pause, .replaceDisk:
                target = byLeader ? .leaderOf(shard: shard, fallback: someNode) : .node(someNode)
            case .replaceNode, .drainNode, .addNode, .moveReplica:
                target = byLeader ? .leaderOf(shard: shard, fallback: someNode) : .node(someNode)
                interruption = rng.below(kind == .replaceNode ? 2 : 3)
            case .partitionAsymmetric:
                target = byLeader ? .leaderOf(shard: shard, fallback: someNode) : .node(someNode)
                direction = rng.below(2) == 0 ? .outbound : .inbound
            case .partitionSymmetric:
                let minority = max(1, rng.inRange(1...max(1, (nodes.count - 1) / 2)))
                target = .nodes(Array(order.prefix(minority)).sorted())
            case .partitionLeader, .transfer:
                target = .leaderOf(shard: shard, fallback: someNode)
            case .partitionRing:
                target = .nodes(order)
            case .rollingRestart:
                target = .allNodes
            }
            steps.append(FaultStep(index: steps.count, startMs: t, durationMs: duration, kind: kind, target: target,
                                   order: order, direction: direction, delayMs: delayMs, interruption: interruption))
            t += duration + draw(o.quietGap)
        }
        return FaultSchedule(seed: seed, options: o, steps: steps)
    }

    public var description: String {
        var lines = ["fault schedule: seed \(seed), \(steps.count) faults over \(o(options.duration)) s from \(options.kinds.map(\.rawValue))"]
        lines += steps.map { "  \($0)" }
        return lines.joined(separator: "\n")
    }

    private func o(_ d: Double) -> String { d == d.rounded() ? "\(Int(d))" : "\(d)" }
}

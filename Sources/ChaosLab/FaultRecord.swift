import Foundation

/// What the injector actually did for one step, for the report: whom it hit (leaders resolved), when it
/// started and healed (seconds after the run started, and raw readings of the injector's clock so they can be
/// lined up with a history taken on the same clock), and what went wrong, if anything.
public struct FaultRecord: Codable, Sendable, Equatable, CustomStringConvertible {
    public var step: Int
    public var kind: FaultKind
    /// Nodes hit (for a partition: the target side, e.g. the isolated node or minority).
    public var nodes: [Int]
    /// Human-readable detail: the partition's cut links, the restarts of a storm…
    public var detail: String
    public var plannedStartMs: Int
    public var plannedDurationMs: Int
    /// Seconds after `FaultInjector.run` began.
    public var start: Double
    /// When the fault was healed. After a step that failed midway, when `healAll` undid everything (then
    /// `healedByFinalHeal` is true). Always set once `execute` returns.
    public var heal: Double?
    /// When the hit nodes answered /ready again after the heal (nil if not awaited or not in time).
    public var recovered: Double?
    public var startNanos: UInt64
    public var healNanos: UInt64?
    /// Set when the step could not be (fully) carried out: skipped (e.g. a partition without a lab) or failed.
    public var problem: String?
    public var skipped: Bool
    public var healedByFinalHeal: Bool

    public var description: String {
        let f = { (d: Double?) in d.map { String(format: "%.2f", $0) } ?? "-" }
        var s = "#\(step) \(kind) nodes \(nodes) start \(f(start)) s heal \(f(heal)) s recovered \(f(recovered)) s: \(detail)"
        if skipped { s += " [skipped]" }
        if let problem { s += " [problem: \(problem)]" }
        return s
    }
}

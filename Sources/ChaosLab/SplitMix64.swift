import Raft

/// Schedule helpers on the project's one seeded generator (`Raft.SplitMix64`, the same one the simulations
/// use): a seed names one fault schedule on every machine and Swift version.
extension SplitMix64 {
    /// Uniform in `range`.
    public mutating func inRange(_ range: ClosedRange<Int>) -> Int { range.lowerBound + below(range.count) }

    /// One element of a non-empty array.
    public mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// A Fisher–Yates shuffle of `items`.
    public mutating func shuffled<T>(_ items: [T]) -> [T] {
        var a = items
        guard a.count > 1 else { return a }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, below(i + 1)) }
        return a
    }
}

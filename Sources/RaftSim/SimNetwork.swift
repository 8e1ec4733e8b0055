import Raft

/// The simulated network: a time-ordered queue of messages with seeded drops, duplicates, delays
/// (hence reordering) and directed link cuts (symmetric and asymmetric partitions).
struct SimNetwork {
    struct InFlight {
        var at: UInt64
        var seq: UInt64
        var message: Message
    }

    private var heap: [InFlight] = []
    private var seq: UInt64 = 0
    /// Directed links that are cut: (from, to).
    var blocked: Set<Link> = []
    var dropRate = 0.0
    var duplicateRate = 0.0
    var maxDelay: UInt64 = 5

    struct Link: Hashable { var from: NodeID; var to: NodeID }

    func isBlocked(_ from: NodeID, _ to: NodeID) -> Bool { blocked.contains(Link(from: from, to: to)) }

    mutating func push(_ m: Message, at: UInt64) {
        seq += 1
        heap.append(InFlight(at: at, seq: seq, message: m))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if less(heap[i], heap[p]) { heap.swapAt(i, p); i = p } else { break }
        }
    }

    /// The next message due at or before `now`, in (time, send order).
    mutating func pop(dueBy now: UInt64) -> Message? {
        guard let top = heap.first, top.at <= now else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && less(heap[l], heap[m]) { m = l }
                if r < heap.count && less(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return top.message
    }

    private func less(_ a: InFlight, _ b: InFlight) -> Bool { a.at < b.at || (a.at == b.at && a.seq < b.seq) }
}

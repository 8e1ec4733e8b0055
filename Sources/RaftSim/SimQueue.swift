/// A time-ordered queue (ties in send order): the simulated networks' in-flight messages.
struct SimQueue<T> {
    private var heap: [(at: UInt64, seq: UInt64, item: T)] = []
    private var seq: UInt64 = 0

    mutating func push(_ item: T, at: UInt64) {
        seq += 1
        heap.append((at, seq, item))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if less(i, p) { heap.swapAt(i, p); i = p } else { break }
        }
    }

    mutating func pop(dueBy now: UInt64) -> T? {
        guard let top = heap.first, top.at <= now else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && less(l, m) { m = l }
                if r < heap.count && less(r, m) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return top.item
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        heap[a].at < heap[b].at || (heap[a].at == heap[b].at && heap[a].seq < heap[b].seq)
    }
}

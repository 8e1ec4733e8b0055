/// One direction between two nodes: while blocked, packets from `from` addressed to `to` are dropped.
public struct DirectedLink: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var from: Int
    public var to: Int

    public init(from: Int, to: Int) {
        self.from = from
        self.to = to
    }

    public static func < (a: DirectedLink, b: DirectedLink) -> Bool { (a.from, a.to) < (b.from, b.to) }
    public var description: String { "\(from)->\(to)" }
}

/// A network partition between nodes (by node id), as the set of directed links it cuts. Pure: `NetworkLab`
/// turns the links into routes; the schedule and the tests reason about them without root.
public enum Partition: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Two groups that cannot reach each other in either direction; nodes in neither group keep every link.
    case split([Int], [Int])
    /// One node cut off from every other node, both directions.
    case isolate(Int)
    /// Packets from each node of `from` to each node of `to` are dropped; the other direction still flows.
    case oneWay(from: [Int], to: [Int])
    /// `bridge` reaches everyone; the other nodes form two halves (in id order) that reach only their own half
    /// and the bridge. With three nodes A, B, C and bridge B: A–B and B–C work, A–C does not.
    case bridge(Int)
    /// Every node reaches a majority (itself included) but no two nodes see the same majority: nodes on a ring
    /// in this order keep links to their nearest neighbours only. With three nodes this is the bridge whose
    /// middle is `order[1]` (a ring of three where each node sees one other cannot be symmetric).
    case majorityRing([Int])
    /// Exactly these directed links.
    case links(Set<DirectedLink>)

    /// The directed links this partition cuts among `nodes` (links to nodes not listed are ignored).
    public func blockedLinks(among nodes: [Int]) -> Set<DirectedLink> {
        let all = Set(nodes)
        func both(_ a: [Int], _ b: [Int]) -> Set<DirectedLink> {
            var out = Set<DirectedLink>()
            for x in a where all.contains(x) {
                for y in b where all.contains(y) && x != y {
                    out.insert(DirectedLink(from: x, to: y))
                    out.insert(DirectedLink(from: y, to: x))
                }
            }
            return out
        }
        switch self {
        case .split(let a, let b):
            return both(a, b)
        case .isolate(let n):
            return both([n], nodes.filter { $0 != n })
        case .oneWay(let from, let to):
            var out = Set<DirectedLink>()
            for x in from where all.contains(x) {
                for y in to where all.contains(y) && x != y { out.insert(DirectedLink(from: x, to: y)) }
            }
            return out
        case .bridge(let middle):
            let others = nodes.filter { $0 != middle }.sorted()
            let half = others.count / 2
            return both(Array(others[..<half]), Array(others[half...]))
        case .majorityRing(let order):
            let ring = order.filter { all.contains($0) }
            let n = ring.count
            if n == 3 { return Partition.bridge(ring[1]).blockedLinks(among: ring) }
            guard n >= 4 else { return [] }
            let reach = (n / 2 + 1) / 2  // each node sees 1 + 2·reach ≥ a majority
            var out = Set<DirectedLink>()
            for i in 0..<n {
                for j in 0..<n where i != j {
                    let d = min((i - j + n) % n, (j - i + n) % n)
                    if d > reach { out.insert(DirectedLink(from: ring[i], to: ring[j])) }
                }
            }
            return out
        case .links(let l):
            return l.filter { all.contains($0.from) && all.contains($0.to) && $0.from != $0.to }
        }
    }

    public var description: String {
        switch self {
        case .split(let a, let b): return "split \(a) | \(b)"
        case .isolate(let n): return "isolate \(n)"
        case .oneWay(let f, let t): return "one-way \(f) -x-> \(t)"
        case .bridge(let m): return "bridge via \(m)"
        case .majorityRing(let o): return "majority ring \(o)"
        case .links(let l): return "links cut \(l.sorted())"
        }
    }
}

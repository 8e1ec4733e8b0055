/// An IPv4 prefix such as 10.201.7.0/24.
struct IPv4Prefix: Hashable, Sendable, CustomStringConvertible {
    var base: UInt32
    var length: Int

    init(base: UInt32, length: Int) {
        self.length = length
        self.base = base & IPv4Prefix.mask(length)
    }

    /// Parses `a.b.c.d` (a /32) or `a.b.c.d/n`.
    init?(_ text: Substring) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let addr = IPv4Prefix.parseAddress(first) else { return nil }
        var len = 32
        if parts.count == 2 {
            guard let l = Int(parts[1]), (0...32).contains(l) else { return nil }
            len = l
        }
        self.init(base: addr, length: len)
    }

    static func parseAddress(_ s: Substring) -> UInt32? {
        let octets = s.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var v: UInt32 = 0
        for o in octets {
            guard let b = UInt8(o) else { return nil }
            v = v << 8 | UInt32(b)
        }
        return v
    }

    static func mask(_ length: Int) -> UInt32 { length == 0 ? 0 : UInt32.max << UInt32(32 - length) }

    func overlaps(_ other: IPv4Prefix) -> Bool {
        let m = IPv4Prefix.mask(min(length, other.length))
        return base & m == other.base & m
    }

    /// The address `host` inside this prefix (host 1 of 10.201.7.0/24 is 10.201.7.1).
    func address(_ host: UInt32) -> String { IPv4Prefix.format(base | host) }

    static func format(_ v: UInt32) -> String { "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)" }

    var description: String { "\(IPv4Prefix.format(base))/\(length)" }
}

/// Chooses a free private /24 for a lab: random (so concurrent labs rarely collide) and overlapping no address
/// or route the root namespace already has — other live labs' bridges included. Tries 10.200–249.y.0 first,
/// then 172.16–31.y.0, then 192.168.y.0 (a host whose routes cover all of 10/8 still gets a lab).
enum SubnetPicker {
    static func pick() throws -> IPv4Prefix {
        let taken = try inUse().filter { $0.length > 0 }
        let pools: [(first: UInt32, second: Range<UInt32>)] = [(10, 200..<250), (172, 16..<32), (192, 168..<169)]
        for pool in pools {
            for _ in 0..<100 {
                let candidate = IPv4Prefix(base: pool.first << 24 | UInt32.random(in: pool.second) << 16 | UInt32.random(in: 0..<256) << 8, length: 24)
                if !taken.contains(where: { $0.overlaps(candidate) }) { return candidate }
            }
        }
        throw LabError.unavailable("no free private /24 (10.200–249.y, 172.16–31.y, 192.168.y): every candidate overlaps a route or address")
    }

    /// Every prefix mentioned by the root namespace's routes (all tables) and addresses.
    static func inUse() throws -> [IPv4Prefix] {
        let routes = try Shell.check(["ip", "-4", "route", "show", "table", "all"])
        let addrs = try Shell.check(["ip", "-4", "-o", "addr", "show"])
        return (routes + "\n" + addrs).split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).compactMap { IPv4Prefix($0) }
    }
}

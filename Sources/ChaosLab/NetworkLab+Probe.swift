import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Checking what the lab network lets through, without any node process: UDP datagrams sent from sockets
/// created inside the node namespaces. A socket belongs to the namespace it was created in, whichever thread
/// uses it later, so a short-lived thread joins the namespace, creates the socket and exits.
extension NetworkLab {
    /// Runs `body` on a fresh thread that has joined `node`'s network namespace (nil: runs it on a fresh thread
    /// in this process's own namespace) and returns its result. Sockets `body` creates stay in that namespace.
    public func inNamespace<T: Sendable>(_ node: Int?, _ body: @escaping @Sendable () -> T) throws -> T {
        var fd: Int32 = -1
        if let node {
            let ns = try namespace(of: node)
            fd = open("/run/netns/\(ns)", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw LabError.command("open /run/netns/\(ns)", String(cString: strerror(errno))) }
        }
        defer { if fd >= 0 { close(fd) } }
        let box = ThreadResult<Result<T, LabError>>()
        let nsFD = fd
        let thread = Thread {
            if nsFD >= 0, NamespaceCall.setns(nsFD, NamespaceCall.newNet) != 0 {
                box.put(.failure(.command("setns", String(cString: strerror(errno)))))
                return
            }
            box.put(.success(body()))
        }
        thread.start()
        return try box.take().get()
    }

    /// Whether a UDP datagram sent from `from` reaches `to` within `timeout` seconds (nil on either side: the
    /// host, i.e. this process's namespace, at `hostAddress`).
    public func reachable(from: Int?, to: Int?, timeout: Double = 0.3) throws -> Bool {
        let toAddress = try to.map { try address(of: $0) } ?? hostAddress
        let receiver = try inNamespace(to) { UDPProbe.bind(toAddress) }
        guard let (rfd, port) = receiver else { throw LabError.command("bind a UDP socket to \(toAddress)", String(cString: strerror(errno))) }
        defer { close(rfd) }
        let sfd = try inNamespace(from) { socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0) }
        guard sfd >= 0 else { throw LabError.command("socket", String(cString: strerror(errno))) }
        defer { close(sfd) }
        let nonce = UInt64.random(in: 1...UInt64.max)
        guard UDPProbe.send(sfd, nonce, to: toAddress, port: port) else { return false }  // e.g. EINVAL: blackhole route
        return UDPProbe.receive(rfd, nonce, timeout: timeout)
    }

    /// Which directed links between nodes currently carry packets.
    public func reachability(timeout: Double = 0.3) throws -> [DirectedLink: Bool] {
        var out: [DirectedLink: Bool] = [:]
        for a in nodes {
            for b in nodes where a != b { out[DirectedLink(from: a, to: b)] = try reachable(from: a, to: b, timeout: timeout) }
        }
        return out
    }
}

/// setns(2), looked up at run time: Glibc's Swift overlay does not export the _GNU_SOURCE declaration.
enum NamespaceCall {
    static let newNet: Int32 = 0x4000_0000  // CLONE_NEWNET

    static func setns(_ fd: Int32, _ type: Int32) -> Int32 {
        guard let f = function else {
            errno = ENOSYS
            return -1
        }
        return f(fd, type)
    }

    private typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    private static let function: SetNS? = {
        guard let sym = dlsym(nil, "setns") else { return nil }
        return unsafeBitCast(sym, to: SetNS.self)
    }()
}

/// A one-shot hand-over of a value from a worker thread.
final class ThreadResult<T: Sendable>: @unchecked Sendable {
    private let ready = DispatchSemaphore(value: 0)
    private var value: T?

    func put(_ v: T) {
        value = v
        ready.signal()
    }

    func take() -> T {
        ready.wait()
        return value!
    }
}

/// The datagrams `NetworkLab.reachable` sends.
enum UDPProbe {
    static func sockaddr(_ host: String, _ port: UInt16) -> sockaddr_in? {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        return inet_pton(AF_INET, host, &a.sin_addr) == 1 ? a : nil
    }

    /// A UDP socket bound to `host` on a free port, and the port.
    static func bind(_ host: String) -> (Int32, UInt16)? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0, var a = sockaddr(host, 0) else { return nil }
        let ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        guard ok == 0, named == 0 else {
            close(fd)
            return nil
        }
        return (fd, UInt16(bigEndian: a.sin_port))
    }

    static func send(_ fd: Int32, _ nonce: UInt64, to host: String, port: UInt16) -> Bool {
        guard var a = sockaddr(host, port) else { return false }
        var n = nonce
        let sent = withUnsafePointer(to: &a) { ap in
            ap.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { sa in
                withUnsafeBytes(of: &n) { sendto(fd, $0.baseAddress, 8, 0, sa, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        return sent == 8
    }

    static func receive(_ fd: Int32, _ nonce: UInt64, timeout: Double) -> Bool {
        let deadline = Monotonic.seconds() + timeout
        while true {
            let left = deadline - Monotonic.seconds()
            if left <= 0 { return false }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var got: UInt64 = 0
            let n = withUnsafeMutableBytes(of: &got) { recv(fd, $0.baseAddress, 8, 0) }
            if n == 8 && got == nonce { return true }
        }
    }
}

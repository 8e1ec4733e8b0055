import CUV
import Glibc

/// Host names to socket addresses, through libuv's `uv_getaddrinfo` (the lookup runs on the thread pool; the
/// completion runs on the loop thread). IP literals never reach the resolver. Every call resolves afresh — a
/// caller that redials resolves again, so a peer whose name moved to another address is found there.
public enum Resolver {
    /// Whether `host` is an IPv4 or IPv6 literal (no lookup needed).
    public static func isLiteral(_ host: String) -> Bool {
        var buf = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, host, &buf) == 1 || inet_pton(AF_INET6, host, &buf) == 1
    }

    /// The longest name looked up (RFC 1035's 253 characters); a longer one is refused without a lookup.
    public static let maxNameBytes = 253

    /// Resolves `host` to the stream-socket addresses it names (IPv4 and IPv6, in the resolver's order).
    static func resolve(loop: EventLoop, host: String, port: Int,
                        _ completion: @escaping (Result<[SocketAddress], UVError>) -> Void) throws(UVError) {
        guard !host.isEmpty, host.utf8.count <= maxNameBytes, (1...65535).contains(port) else {
            throw UVError(Int32(UV_EINVAL.rawValue), "host name '\(host.prefix(64))' (port \(port))")
        }
        let req = UnsafeMutablePointer<uv_getaddrinfo_t>.allocate(capacity: 1)
        req.pointee.data = RequestBox((host, completion)).retainedPointer()
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        let status = uv_getaddrinfo(loop.raw, req, { req, status, res in
            let box = RequestBox<(String, (Result<[SocketAddress], UVError>) -> Void)>.take(req!.pointee.data)
            req!.deallocate()
            defer { if let res { uv_freeaddrinfo(res) } }
            let (host, completion) = box.value
            guard status == 0 else { completion(.failure(UVError(status, "resolve \(host)"))); return }
            var out: [SocketAddress] = []
            var p = res
            while let a = p {
                if let sa = a.pointee.ai_addr, let addr = SocketAddress(copying: sa, length: Int(a.pointee.ai_addrlen)) {
                    out.append(addr)
                }
                p = a.pointee.ai_next
            }
            completion(out.isEmpty ? .failure(UVError(Int32(UV_EAI_NONAME.rawValue), "resolve \(host): no address")) : .success(out))
        }, host, String(port), &hints)   // a numeric service: the addresses come with the port set
        if status < 0 {
            _ = RequestBox<(String, (Result<[SocketAddress], UVError>) -> Void)>.take(req.pointee.data)
            req.deallocate()
            throw UVError(status, "resolve \(host)")
        }
    }
}

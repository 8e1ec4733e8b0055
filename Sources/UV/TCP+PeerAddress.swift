import CUV
#if canImport(Glibc)
import Glibc
#endif

extension TCPConnection {
    /// The remote IP address (without the port), e.g. `127.0.0.1` or `::1`; nil once closed or if unknown.
    /// For logs and per-source rate limits.
    public var peerHost: String? {
        guard !isClosing else { return nil }
        var storage = sockaddr_storage()
        var len = Int32(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { uv_tcp_getpeername(tcp, $0, &len) }
        }
        guard rc == 0 else { return nil }
        var name = [CChar](repeating: 0, count: 64)
        let family = storage.ss_family
        let ok: Int32 = withUnsafePointer(to: &storage) { p in
            if family == sa_family_t(AF_INET6) {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { uv_ip6_name($0, &name, name.count) }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { uv_ip4_name($0, &name, name.count) }
        }
        guard ok == 0 else { return nil }
        return String(cString: name)
    }
}

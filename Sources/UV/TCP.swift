import CUV
#if canImport(Glibc)
import Glibc
#endif

/// What a connection's reader receives.
public enum ReadEvent {
    /// Bytes arrived (copied out of the loop's read buffer).
    case data([UInt8])
    /// The peer closed its side.
    case endOfFile
    /// The connection failed.
    case error(UVError)
}

/// A TCP connection (accepted or connected). Callbacks run on the loop thread.
public final class TCPConnection: UVHandle {
    private var reader: ((ReadEvent) -> Void)?
    private var readBuffer: UnsafeMutableRawPointer?
    private static let readBufferSize = 64 * 1024

    init(loopForAccept loop: EventLoop) throws(UVError) {
        super.init(loop: loop, type: UV_TCP)
        let status = handle.withMemoryRebound(to: uv_tcp_t.self, capacity: 1) { uv_tcp_init(loop.raw, $0) }
        if status < 0 { discardUninitialized(); throw UVError(status, "uv_tcp_init") }
        didInitialize()
    }

    var stream: UnsafeMutablePointer<uv_stream_t> {
        UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_stream_t.self)
    }

    var tcp: UnsafeMutablePointer<uv_tcp_t> {
        UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_tcp_t.self)
    }

    /// Connects to `host:port`: an IPv4 or IPv6 literal, or a host name resolved first (`Resolver`, afresh on
    /// every call) and connected at its first address. `completion` gets the connection or the error (e.g.
    /// `ECONNREFUSED`, or the resolver's `EAI_NONAME`); on error the handle is already closed.
    /// `from`: an IP literal the connection is made from (bound before connecting, any port) when the destination
    /// has its family; the system picks the source otherwise.
    public static func connect(loop: EventLoop, host: String, port: Int, from source: String? = nil,
                               _ completion: @escaping (Result<TCPConnection, UVError>) -> Void) throws(UVError) {
        let local = try source.map { s throws(UVError) in try SocketAddress(host: s, port: 0) }
        guard Resolver.isLiteral(host) else {
            try Resolver.resolve(loop: loop, host: host, port: port) { result in
                switch result {
                case .failure(let e): completion(.failure(e))
                case .success(let addresses): connect(loop: loop, trying: addresses[...], from: local, completion)
                }
            }
            return
        }
        try connect(loop: loop, address: try SocketAddress(host: host, port: port), from: local, completion)
    }

    /// Connects to the first of `addresses` that accepts (a name may resolve to an IPv6 address the server does
    /// not listen on before the IPv4 one it does); fails with the last address's error.
    private static func connect(loop: EventLoop, trying addresses: ArraySlice<SocketAddress>, from local: SocketAddress?,
                                _ completion: @escaping (Result<TCPConnection, UVError>) -> Void) {
        guard let first = addresses.first else {
            completion(.failure(UVError(Int32(UV_EAI_NONAME.rawValue), "connect: no address")))
            return
        }
        let rest = addresses.dropFirst()
        do throws(UVError) {
            try connect(loop: loop, address: first, from: local) { result in
                if case .failure = result, !rest.isEmpty { connect(loop: loop, trying: rest, from: local, completion) } else { completion(result) }
            }
        } catch {
            if rest.isEmpty { completion(.failure(error)) } else { connect(loop: loop, trying: rest, from: local, completion) }
        }
    }

    private static func connect(loop: EventLoop, address: SocketAddress, from local: SocketAddress?,
                                _ completion: @escaping (Result<TCPConnection, UVError>) -> Void) throws(UVError) {
        var addr = address
        let conn = try TCPConnection(loopForAccept: loop)
        if var local, local.storage.ss_family == addr.storage.ss_family {
            let bound = local.withSockaddr { uv_tcp_bind(conn.tcp, $0, 0) }
            if bound < 0 {
                conn.close()
                throw UVError(bound, "bind the source address")
            }
        }
        let req = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        req.pointee.data = RequestBox((conn, completion)).retainedPointer()
        let status = addr.withSockaddr { uv_tcp_connect(req, conn.tcp, $0, { req, status in
            let box = RequestBox<(TCPConnection, (Result<TCPConnection, UVError>) -> Void)>.take(req!.pointee.data)
            req!.deallocate()
            let (conn, completion) = box.value
            if status < 0 {
                if !conn.isClosing { conn.close() }
                completion(.failure(UVError(status, "connect")))
            } else {
                completion(.success(conn))
            }
        }) }
        if status < 0 {
            _ = RequestBox<(TCPConnection, (Result<TCPConnection, UVError>) -> Void)>.take(req.pointee.data)
            req.deallocate()
            conn.close()
            throw UVError(status, "uv_tcp_connect")
        }
    }

    /// Starts delivering bytes to `reader` until EOF, an error, `stopReading()` or `close()`.
    public func startReading(_ reader: @escaping (ReadEvent) -> Void) throws(UVError) {
        checkOpen("startReading")
        self.reader = reader
        if readBuffer == nil { readBuffer = .allocate(byteCount: TCPConnection.readBufferSize, alignment: 16) }
        try UVError.check(uv_read_start(stream, { h, _, buf in
            let me = TCPConnection.from(UnsafeMutableRawPointer(h))
            buf!.pointee = uv_buf_init(me.readBuffer!.assumingMemoryBound(to: CChar.self), UInt32(TCPConnection.readBufferSize))
        }, { s, nread, buf in
            let me = TCPConnection.from(UnsafeMutableRawPointer(s))
            if nread > 0 {
                let bytes = Array(UnsafeRawBufferPointer(start: buf!.pointee.base, count: nread))
                me.reader?(.data(bytes))
            } else if nread == Int(UV_EOF.rawValue) {
                me.reader?(.endOfFile)
            } else if nread < 0 {
                me.reader?(.error(UVError(Int32(nread), "read")))
            }
        }), "uv_read_start")
    }

    public func stopReading() {
        checkOpen("stopReading")
        uv_read_stop(stream)
    }

    /// Queues `bytes` for writing. `completion` runs exactly once: nil on success, the error otherwise
    /// (`ECANCELED` if the connection is closed first).
    public func write(_ bytes: [UInt8], _ completion: ((UVError?) -> Void)? = nil) {
        write(vectored: [bytes], completion)
    }

    /// Writes several buffers with one `uv_write` (copied once into one contiguous buffer).
    public func write(vectored parts: [[UInt8]], _ completion: ((UVError?) -> Void)? = nil) {
        checkOpen("write")
        let total = parts.reduce(0) { $0 + $1.count }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1), alignment: 16)
        var offset = 0
        for p in parts {
            p.withUnsafeBytes { src in
                if let base = src.baseAddress { (storage + offset).copyMemory(from: base, byteCount: src.count) }
            }
            offset += p.count
        }
        let req = UnsafeMutablePointer<uv_write_t>.allocate(capacity: 1)
        req.pointee.data = RequestBox((storage, completion)).retainedPointer()
        var buf = uv_buf_init(storage.assumingMemoryBound(to: CChar.self), UInt32(total))
        let status = uv_write(req, stream, &buf, 1, { req, status in
            let box = RequestBox<(UnsafeMutableRawPointer, ((UVError?) -> Void)?)>.take(req!.pointee.data)
            req!.deallocate()
            box.value.0.deallocate()
            box.value.1?(status < 0 ? UVError(status, "write") : nil)
        })
        if status < 0 {
            let box = RequestBox<(UnsafeMutableRawPointer, ((UVError?) -> Void)?)>.take(req.pointee.data)
            req.deallocate()
            storage.deallocate()
            box.value.1?(UVError(status, "uv_write"))
        }
    }

    /// Bytes queued but not yet handed to the kernel: use it for backpressure.
    public var pendingWriteBytes: Int { uv_stream_get_write_queue_size(stream) }

    public func setNoDelay(_ on: Bool) throws(UVError) {
        checkOpen("setNoDelay")
        try UVError.check(uv_tcp_nodelay(tcp, on ? 1 : 0), "uv_tcp_nodelay")
    }

    override func willClose() {
        reader = nil
    }

    deinit { readBuffer?.deallocate() }
}

/// Listens for TCP connections; each accepted connection is handed to `onAccept`.
public final class TCPListener: UVHandle {
    private var onAccept: ((Result<TCPConnection, UVError>) -> Void)?

    /// Binds to `host:port` (port 0 picks a free port; read it back with `localPort`) and starts listening.
    public init(loop: EventLoop, host: String, port: Int, backlog: Int32 = 511,
                onAccept: @escaping (Result<TCPConnection, UVError>) -> Void) throws(UVError) {
        super.init(loop: loop, type: UV_TCP)
        let tcp = UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_tcp_t.self)
        let status = uv_tcp_init(loop.raw, tcp)
        if status < 0 { discardUninitialized(); throw UVError(status, "uv_tcp_init") }
        didInitialize()
        self.onAccept = onAccept
        do {
            var addr = try SocketAddress(host: host, port: port)
            try UVError.check(addr.withSockaddr { uv_tcp_bind(tcp, $0, 0) }, "bind \(host):\(port)")
            try UVError.check(uv_listen(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_stream_t.self), backlog, { server, status in
                let me = TCPListener.from(UnsafeMutableRawPointer(server))
                guard status >= 0 else { me.onAccept?(.failure(UVError(status, "accept"))); return }
                do throws(UVError) {
                    let conn = try TCPConnection(loopForAccept: me.loop)
                    let s = uv_accept(server, conn.stream)
                    if s < 0 {
                        conn.close()
                        me.onAccept?(.failure(UVError(s, "uv_accept")))
                    } else {
                        me.onAccept?(.success(conn))
                    }
                } catch {
                    me.onAccept?(.failure(error))
                }
            }), "listen \(host):\(port)")
        } catch {
            close()
            throw error
        }
    }

    /// The port actually bound.
    public var localPort: Int {
        var storage = sockaddr_storage()
        var len = Int32(MemoryLayout<sockaddr_storage>.size)
        let tcp = UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_tcp_t.self)
        _ = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { uv_tcp_getsockname(tcp, $0, &len) }
        }
        if storage.ss_family == sa_family_t(AF_INET6) {
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
        }
        return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
    }

    override func willClose() { onAccept = nil }
}

/// An IPv4 or IPv6 socket address: a literal parsed by libuv, or one the resolver found.
struct SocketAddress: @unchecked Sendable {
    var storage = sockaddr_storage()

    init(host: String, port: Int) throws(UVError) {
        if host.contains(":") {
            let s = withUnsafeMutablePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { uv_ip6_addr(host, Int32(port), $0) }
            }
            try UVError.check(s, "address \(host)")
        } else {
            let s = withUnsafeMutablePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { uv_ip4_addr(host, Int32(port), $0) }
            }
            try UVError.check(s, "address \(host)")
        }
    }

    /// A copy of a resolver's address (IPv4 or IPv6 only).
    init?(copying sa: UnsafePointer<sockaddr>, length: Int) {
        let family = Int32(sa.pointee.sa_family)
        guard family == AF_INET || family == AF_INET6, length <= MemoryLayout<sockaddr_storage>.size else { return nil }
        withUnsafeMutableBytes(of: &storage) { dst in dst.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: length)) }
    }

    mutating func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>) -> R) -> R {
        withUnsafePointer(to: &storage) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0) } }
    }
}

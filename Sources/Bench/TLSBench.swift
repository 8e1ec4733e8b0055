import ArgumentParser
import Foundation
import TLS
import TLSTransport
import UV

/// `sutra-bench tls`: round trips of one small message over one loopback connection — plaintext TCP, then mutual
/// TLS 1.3 with the peer links' settings (`TLSContext.Configuration.peer`) through the same `TLSConnection` the
/// nodes use — alternately, several rounds, one libuv loop. The difference is what TLS adds to every hop of a
/// replicated write (a leader's append and its follower's acknowledgement are two such hops).
struct TLSBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tls", abstract: "Round-trip time over loopback: plaintext vs peer mutual TLS.")
    @Option(help: "Round trips per run.") var messages = 20_000
    @Option(help: "Message bytes (an append of one small write is a few hundred).") var size = 300
    @Option(help: "Runs of each kind, alternated.") var rounds = 5

    func run() throws {
        let dir = NSTemporaryDirectory() + "sutra-tls-bench-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let certs = ClusterCertificates(directory: dir)
        try certs.create(clusterID: "bench", nodes: 2)
        let server = try TLSContext(.peer(role: .server, certificate: certs.nodeCertificate(1), key: certs.nodeKey(1), ca: certs.caCertificate))
        let client = try TLSContext(.peer(role: .client, certificate: certs.nodeCertificate(2), key: certs.nodeKey(2), ca: certs.caCertificate))
        var plain: [Double] = [], tls: [Double] = []
        for r in 1...rounds {
            let p = try roundTripMicros(nil)
            let t = try roundTripMicros((server, client))
            plain.append(p); tls.append(t)
            print(String(format: "round %d: plaintext %.1f µs, mutual TLS %.1f µs per round trip (+%.1f)", r, p, t, t - p))
        }
        let mp = median(plain), mt = median(tls)
        print(String(format: "median of %d rounds × %d round trips of %d bytes: plaintext %.1f µs, mutual TLS %.1f µs, TLS adds %.1f µs per round trip (%.1f per one-way hop)",
                     rounds, messages, size, mp, mt, mt - mp, (mt - mp) / 2))
    }

    private func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

    /// Mean microseconds per round trip: the client sends `size` bytes, the server echoes them, `messages` times.
    private func roundTripMicros(_ contexts: (server: TLSContext, client: TLSContext)?) throws -> Double {
        let loop = try EventLoop()
        let message = [UInt8](repeating: 0x5A, count: size)
        var keep: [AnyObject] = []
        var started = DispatchTime.now().uptimeNanoseconds, finished: UInt64 = 0
        var done = 0
        var listener: TCPListener?
        listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { result in
            guard case .success(let tcp) = result else { return }
            try? tcp.setNoDelay(true)
            if let contexts, let session = try? TLSSession(context: contexts.server) {
                let conn = TLSConnection(tcp: tcp, session: session)
                keep.append(conn)
                conn.start { [unowned conn] event in if case .data(let b) = event { conn.write(b) } }
            } else {
                keep.append(tcp)
                try? tcp.startReading { [unowned tcp] event in if case .data(let b) = event { tcp.write(b) } }
            }
        }
        let port = listener!.localPort
        try TCPConnection.connect(loop: loop, host: "127.0.0.1", port: port) { result in
            guard case .success(let tcp) = result else { loop.stop(); return }
            try? tcp.setNoDelay(true)
            var got = 0
            var send: () -> Void = {}
            let onData: ([UInt8]) -> Void = { bytes in
                got += bytes.count
                guard got >= self.size else { return }
                got -= self.size
                done += 1
                if done == self.messages {
                    finished = DispatchTime.now().uptimeNanoseconds
                    loop.stop()
                } else {
                    send()
                }
            }
            if let contexts, let session = try? TLSSession(context: contexts.client) {
                let conn = TLSConnection(tcp: tcp, session: session)
                keep.append(conn)
                send = { [unowned conn] in conn.write(message) }
                conn.start { event in
                    switch event {
                    case .established:
                        started = DispatchTime.now().uptimeNanoseconds
                        send()
                    case .data(let b): onData(b)
                    case .closed: loop.stop()
                    }
                }
            } else {
                keep.append(tcp)
                send = { [unowned tcp] in tcp.write(message) }
                try? tcp.startReading { event in if case .data(let b) = event { onData(b) } }
                started = DispatchTime.now().uptimeNanoseconds
                send()
            }
        }
        _ = loop.run()
        listener?.close()
        for case let c as TLSConnection in keep { c.close() }
        for case let c as TCPConnection in keep where !c.isClosing { c.close() }
        _ = loop.runNoWait()
        guard done == messages else { throw ValidationError("only \(done) of \(messages) round trips completed") }
        return Double(finished - started) / 1000 / Double(messages)
    }
}

import Foundation
import TLS
import XCTest

/// A fresh directory of cluster certificates for one test, deleted afterwards.
final class CertDir {
    let path: String
    let certs: ClusterCertificates

    init(cluster: String = "test", nodes: Int = 3) throws {
        path = NSTemporaryDirectory() + "sutra-tls-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        certs = ClusterCertificates(directory: path)
        try certs.create(clusterID: cluster, nodes: nodes)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func peerContext(_ node: UInt64, _ role: TLSContext.Role) throws -> TLSContext {
        try TLSContext(.peer(role: role, certificate: certs.nodeCertificate(node), key: certs.nodeKey(node), ca: certs.caCertificate))
    }
}

/// Moves ciphertext between two sessions until neither has anything to send; returns the plaintext each side
/// received. An error thrown by either side is returned with which side threw it. `chunk` splits every delivery.
struct Pump {
    var toServer: [UInt8] = []
    var toClient: [UInt8] = []
    var serverError: TLSError?
    var clientError: TLSError?

    @discardableResult
    mutating func run(_ client: TLSSession, _ server: TLSSession, chunk: Int = Int.max, rounds: Int = 100) -> Bool {
        for _ in 0..<rounds {
            let c = client.takeOutgoing(), s = server.takeOutgoing()
            if c.isEmpty && s.isEmpty { return true }
            if serverError == nil { deliver(c, to: server, into: &toServer, error: &serverError, chunk: chunk) }
            if clientError == nil { deliver(s, to: client, into: &toClient, error: &clientError, chunk: chunk) }
            if serverError != nil && clientError != nil { return true }
        }
        return false
    }

    private func deliver(_ bytes: [UInt8], to s: TLSSession, into out: inout [UInt8], error: inout TLSError?, chunk: Int) {
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + chunk)
            do { out += try s.receive(Array(bytes[i..<end])) } catch let e { error = e; return }
            i = end
        }
    }
}

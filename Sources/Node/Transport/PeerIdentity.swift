import NodeCore
import Raft
import TLS

/// Who a peer is, decided from its certificate and checked against its hello. Pure.
///
/// Rules: a TLS peer's certificate must name exactly one node of this cluster (`sutra://<cluster>/node/<id>`);
/// its hello must then claim that node and that cluster; a dialed peer must be the node the link was dialed for.
enum PeerIdentity {
    /// The node a verified certificate names for `clusterID`, or why it names none.
    static func certifiedNode(_ cert: PeerCertificate?, clusterID: String) -> Result<NodeID, PeerIdentityRefusal> {
        guard let cert else { return .failure(.init("no client certificate")) }
        let ids = cert.nodeIdentities
        let ours = ids.filter { $0.clusterID == clusterID }
        if ours.count == 1 { return .success(ours[0].nodeID) }
        if ours.count > 1 { return .failure(.init("certificate names several nodes: \(ours.map(\.uri))")) }
        if ids.isEmpty { return .failure(.init("certificate names no Sutra node (SAN URIs \(cert.uris))")) }
        return .failure(.init("certificate is for cluster \(ids[0].clusterID), not \(clusterID)"))
    }

    /// Why a hello does not match the certificate (nil: it matches). `certified` is nil on a plaintext link.
    static func refusal(hello: PeerHello, certified: NodeID?, clusterID: String) -> PeerIdentityRefusal? {
        guard let certified else { return nil }
        if hello.clusterID != clusterID { return .init("hello claims cluster \(hello.clusterID) but the certificate is for cluster \(clusterID)") }
        if hello.node != certified { return .init("hello claims node \(hello.node) but the certificate is for node \(certified)") }
        return nil
    }
}

/// One line saying why a peer's identity was refused.
struct PeerIdentityRefusal: Error, Equatable, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// How peer links are protected (`--peer-tls`, `--insecure-peers`).
enum PeerTLSMode: String, Sendable {
    /// Every link is mutual TLS 1.3; plaintext connections are refused.
    case required
    /// Rolling upgrade: TLS first, plaintext accepted from and dialed to peers that do not speak it.
    case permissive
    /// `--insecure-peers`: plaintext only, no authentication.
    case off
}

/// The peer links' TLS setting: the mode and, unless it is `.off`, the contexts for accepted (server) and dialed
/// (client) links — both mutual TLS 1.3 with this node's certificate against the cluster CA.
struct PeerSecurity {
    let mode: PeerTLSMode
    let server: TLSContext?
    let client: TLSContext?

    static let insecure = PeerSecurity(mode: .off, server: nil, client: nil)

    /// Loads the node's certificate, key and CA bundle for both roles; a bad file is a `.configuration` error.
    static func load(certificate: String, key: String, ca: String, mode: PeerTLSMode) throws(TLSError) -> PeerSecurity {
        precondition(mode != .off)
        return PeerSecurity(mode: mode,
                            server: try TLSContext(.peer(role: .server, certificate: certificate, key: key, ca: ca)),
                            client: try TLSContext(.peer(role: .client, certificate: certificate, key: key, ca: ca)))
    }

    /// SIGHUP (certificate rotation): both contexts from the same files again. Throws — the contexts in force stay
    /// — if a file is bad or the new certificate names other Sutra node identities than the one in force (a file
    /// swapped by mistake must not change who this node is). With mode `.off` there is nothing to reload.
    func reloaded() throws(TLSError) -> PeerSecurity {
        guard let server, let client else { return self }
        let newServer = try server.reloaded(), newClient = try client.reloaded()
        let before = server.ownCertificate?.nodeIdentities ?? [], after = newServer.ownCertificate?.nodeIdentities ?? []
        guard before == after else {
            throw TLSError(.configuration, "the new certificate names \(after.map(\.uri)), the one in force \(before.map(\.uri))")
        }
        return PeerSecurity(mode: mode, server: newServer, client: newClient)
    }
}

/// The names in a peer's certificate after it verified against the CA bundle: what a session says about who is
/// on the other end. Only a verified certificate — or a context's own (`TLSContext.ownCertificate`) — ever
/// becomes a `PeerCertificate`.
public struct PeerCertificate: Sendable, Equatable {
    public var uris: [String] = []
    public var dnsNames: [String] = []
    public var ipAddresses: [String] = []
    public var commonName: String?
    /// Expiry, Unix seconds.
    public var notAfter: Int64?

    public init(uris: [String] = [], dnsNames: [String] = [], ipAddresses: [String] = [], commonName: String? = nil,
                notAfter: Int64? = nil) {
        self.uris = uris
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.commonName = commonName
        self.notAfter = notAfter
    }

    /// Parses the C layer's "KIND:value" lines; unknown kinds and malformed lines are ignored.
    init(lines: String) {
        for line in lines.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let kind = line[..<colon], value = String(line[line.index(after: colon)...])
            switch kind {
            case "URI": uris.append(value)
            case "DNS": dnsNames.append(value)
            case "IP": ipAddresses.append(value)
            case "CN": commonName = value
            case "NOTAFTER": notAfter = Int64(value)
            default: break
            }
        }
    }

    /// The Sutra node identities the certificate names (`sutra://<cluster>/node/<id>` URIs).
    public var nodeIdentities: [SutraNodeIdentity] { uris.compactMap(SutraNodeIdentity.init(uri:)) }
}

/// A node's identity as written in its certificate: the subject alternative name URI
/// `sutra://<cluster id>/node/<node id>`. Pure; a malformed URI is not an identity.
public struct SutraNodeIdentity: Sendable, Equatable, CustomStringConvertible {
    public let clusterID: String
    public let nodeID: UInt64

    public init(clusterID: String, nodeID: UInt64) {
        self.clusterID = clusterID
        self.nodeID = nodeID
    }

    /// Parses `sutra://<cluster>/node/<id>`: the cluster a non-empty run of `[A-Za-z0-9._-]` (at most 128), the
    /// id a decimal 1…2⁶³ without sign or leading zeros.
    public init?(uri: String) {
        let prefix = "sutra://"
        guard uri.hasPrefix(prefix) else { return nil }
        let rest = uri.dropFirst(prefix.count)
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1] == "node" else { return nil }
        let cluster = parts[0], id = parts[2]
        guard !cluster.isEmpty, cluster.count <= 128,
              cluster.utf8.allSatisfy({ SutraNodeIdentity.clusterByte($0) }) else { return nil }
        guard !id.isEmpty, id.count <= 19, id.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), id.first != "0",
              let n = UInt64(id), n >= 1, n <= UInt64(Int64.max) else { return nil }
        clusterID = String(cluster)
        nodeID = n
    }

    public var uri: String { "sutra://\(clusterID)/node/\(nodeID)" }
    public var description: String { uri }

    /// Whether a cluster id can be written into a certificate URI.
    public static func isValidClusterID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy(clusterByte)
    }

    static func clusterByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x2D || b == 0x5F
    }
}

extension PeerCertificate {
    /// Reads the names a `ctls_*_names` call writes (growing the buffer up to 1 MiB); nil when it has none.
    static func read(_ names: (UnsafeMutablePointer<CChar>?, Int) -> Int32) -> PeerCertificate? {
        var cap = 4096
        while cap <= 1 << 20 {
            var buf = [CChar](repeating: 0, count: cap)
            let n = buf.withUnsafeMutableBufferPointer { names($0.baseAddress, $0.count) }
            if n == 0 { return nil }
            if n > 0 { return PeerCertificate(lines: buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }) }
            cap *= 4
        }
        return nil
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// The certificates of one cluster, as `sutra certs init` and `sutra cluster up` lay them out in a directory:
///
///     ca.crt  ca.key (0600)                 the cluster CA (keep ca.key off the nodes)
///     node-<id>.crt  node-<id>.key (0600)   SAN URI sutra://<cluster>/node/<id>, DNS/IP SANs for its hosts
///     client.crt  client.key (0600)         an operator's client certificate (SAN URI sutra://<cluster>/client/operator)
///
/// Pure path arithmetic plus `create`, which writes them with `CertificateFactory`.
public struct ClusterCertificates: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public var caCertificate: String { directory + "/ca.crt" }
    public var caKey: String { directory + "/ca.key" }
    public func nodeCertificate(_ id: UInt64) -> String { directory + "/node-\(id).crt" }
    public func nodeKey(_ id: UInt64) -> String { directory + "/node-\(id).key" }
    public var clientCertificate: String { directory + "/client.crt" }
    public var clientKey: String { directory + "/client.key" }

    /// The subject alternative names of node `id` reachable at `hosts` (names and IP literals), always with
    /// its identity URI first; loopback is added so a local tool can reach any node.
    public static func nodeNames(clusterID: String, node id: UInt64, hosts: [String]) -> [String] {
        var names = [SutraNodeIdentity(clusterID: clusterID, nodeID: id).uri].map { "URI:" + $0 }
        var seen = Set<String>()
        for h in hosts + ["localhost", "127.0.0.1", "::1"] where seen.insert(h).inserted {
            names.append((isIPLiteral(h) ? "IP:" : "DNS:") + h)
        }
        return names
    }

    static func isIPLiteral(_ h: String) -> Bool {
        if h.contains(":") { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) }
    }

    /// Creates the CA, one certificate per node (`hosts[i]` for node i+1; all nodes get loopback), and the
    /// operator's client certificate. Refuses to overwrite an existing CA key. Node certificates last
    /// `validDays` days, the CA ten times that.
    public func create(clusterID: String, nodes: Int, hosts: [String] = [], validDays: Int = 825) throws(TLSError) {
        guard SutraNodeIdentity.isValidClusterID(clusterID) else {
            throw TLSError(.configuration, "cluster id '\(clusterID)' cannot be written in a certificate: use 1…128 of A-Z a-z 0-9 . _ -")
        }
        guard (1...255).contains(nodes) else { throw TLSError(.configuration, "--nodes is \(nodes); allowed: 1…255") }
        guard hosts.isEmpty || hosts.count == nodes else {
            throw TLSError(.configuration, "--hosts names \(hosts.count) hosts for \(nodes) nodes: give one per node")
        }
        guard access(caKey, F_OK) != 0 else {
            throw TLSError(.configuration, "\(caKey) already exists: refusing to replace the cluster CA")
        }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw TLSError(.configuration, "cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        let day = 86_400
        try CertificateFactory.makeCA(commonName: "Sutra cluster \(clusterID) CA", validFor: 10 * validDays * day,
                                      keyPath: caKey, certificatePath: caCertificate)
        for i in 1...nodes {
            let id = UInt64(i)
            let hostNames = hosts.isEmpty ? [] : [hosts[i - 1]]
            try CertificateFactory.makeLeaf(caKeyPath: caKey, caCertificatePath: caCertificate,
                                            commonName: "sutra node \(id) of \(clusterID)",
                                            subjectAltNames: ClusterCertificates.nodeNames(clusterID: clusterID, node: id, hosts: hostNames),
                                            validUntil: validDays * day, keyPath: nodeKey(id), certificatePath: nodeCertificate(id))
        }
        try CertificateFactory.makeLeaf(caKeyPath: caKey, caCertificatePath: caCertificate,
                                        commonName: "sutra operator of \(clusterID)",
                                        subjectAltNames: ["URI:sutra://\(clusterID)/client/operator"],
                                        validUntil: validDays * day, keyPath: clientKey, certificatePath: clientCertificate)
    }

    /// Issues node `id`'s key and certificate from the existing CA (a node added to a running cluster: `sutra node
    /// add`). Refuses without the CA key, and when the node already has a certificate here (ids are never reused).
    public func addNode(clusterID: String, id: UInt64, host: String? = nil, validDays: Int = 825) throws(TLSError) {
        guard SutraNodeIdentity.isValidClusterID(clusterID) else {
            throw TLSError(.configuration, "cluster id '\(clusterID)' cannot be written in a certificate: use 1…128 of A-Z a-z 0-9 . _ -")
        }
        guard id >= 1 else { throw TLSError(.configuration, "node id 0 is reserved") }
        guard access(caKey, R_OK) == 0 else {
            throw TLSError(.configuration, "\(caKey) is missing: node certificates are issued by the cluster CA that `sutra certs init` created")
        }
        guard access(nodeCertificate(id), F_OK) != 0 else {
            throw TLSError(.configuration, "\(nodeCertificate(id)) already exists: node \(id) has a certificate (a new node needs a new id)")
        }
        try CertificateFactory.makeLeaf(caKeyPath: caKey, caCertificatePath: caCertificate,
                                        commonName: "sutra node \(id) of \(clusterID)",
                                        subjectAltNames: ClusterCertificates.nodeNames(clusterID: clusterID, node: id, hosts: host.map { [$0] } ?? []),
                                        validUntil: validDays * 86_400, keyPath: nodeKey(id), certificatePath: nodeCertificate(id))
    }
}

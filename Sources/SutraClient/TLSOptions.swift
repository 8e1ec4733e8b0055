/// TLS to the nodes' client ports (`SutraClient.Options.tls`).
///
/// The client trusts the CA certificates in `caFile` only and requires every node's certificate to verify
/// against them and to name the address dialled (an IP SAN for an IP literal, a DNS SAN for a host name;
/// `localhost` is 127.0.0.1).
/// `certificateFile`/`keyFile` present a client certificate, for nodes started with `--client-tls-ca`.
public struct TLSOptions: Sendable, Hashable {
    public var caFile: String
    public var certificateFile: String?
    public var keyFile: String?

    public init(caFile: String, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}

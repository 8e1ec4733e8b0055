import CTLS

/// Makes ECDSA P-256 keys and SHA-256-signed X.509 certificates with OpenSSL's C API: a CA, and leaf certificates
/// it signs (usable as TLS server and client certificates). Keys are written 0600, certificates 0644; an existing
/// file is overwritten. Validity is given as offsets from now, so tests can make expired certificates.
public enum CertificateFactory {
    /// A self-signed CA certificate (CA:TRUE, pathlen 0, keyCertSign) and its key.
    public static func makeCA(commonName: String, validFrom: Int = -300, validFor: Int,
                              keyPath: String, certificatePath: String) throws(TLSError) {
        let (ok, message) = withErrorBuffer { err, len in
            ctls_make_ca(commonName, validFrom, validFor, keyPath, certificatePath, err, len)
        }
        guard ok == 1 else { throw TLSError(.configuration, message) }
    }

    /// A leaf certificate signed by the CA at `caKeyPath` / `caCertificatePath`. `subjectAltNames` in OpenSSL's
    /// syntax ("URI:sutra://c/node/1", "DNS:localhost", "IP:127.0.0.1"). `validFrom` / `validUntil` are seconds from now.
    public static func makeLeaf(caKeyPath: String, caCertificatePath: String, commonName: String,
                                subjectAltNames: [String], validFrom: Int = -300, validUntil: Int,
                                keyPath: String, certificatePath: String) throws(TLSError) {
        for name in subjectAltNames {
            guard !name.contains(","), !name.contains("\n"), !name.contains("\0") else {
                throw TLSError(.configuration, "subject alternative name '\(name)' contains a comma, newline or NUL")
            }
        }
        let san = subjectAltNames.isEmpty ? nil : subjectAltNames.joined(separator: ",")
        let (ok, message) = withErrorBuffer { err, len in
            ctls_make_leaf(caKeyPath, caCertificatePath, commonName, san, validFrom, validUntil, keyPath, certificatePath, err, len)
        }
        guard ok == 1 else { throw TLSError(.configuration, message) }
    }
}

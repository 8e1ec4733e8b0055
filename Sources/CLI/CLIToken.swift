import Foundation

/// Where the CLI finds its bearer token: `--token`, else `SUTRA_TOKEN`, else the admin token `sutra cluster up`
/// wrote into the local cluster's directory (`<data>/admin.token`), else none (nodes without a tokens file).
enum CLIToken {
    static func resolve(flag: String?, dataDir: String) throws -> String? {
        if let flag, !flag.isEmpty { return flag }
        if let env = ProcessInfo.processInfo.environment["SUTRA_TOKEN"], !env.isEmpty { return env }
        let path = LocalCluster.adminTokenPath(URL(fileURLWithPath: dataDir).standardizedFileURL.path)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let d = FileManager.default.contents(atPath: path), d.count <= 4096,
              let t = String(data: d, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty else {
            throw CLIError("cannot read the local cluster's admin token at \(path)")
        }
        return t
    }

    /// HTTP headers carrying the token (none without one).
    static func headers(_ token: String?) -> [(String, String)] {
        token.map { [("Authorization", "Bearer \($0)")] } ?? []
    }
}

/// The CLI's environment variables (an empty value counts as unset): `SUTRA_ENDPOINTS` (SDK endpoints),
/// `SUTRA_HTTP_ENDPOINTS` (HTTP endpoints of operator commands), `SUTRA_TOKEN`, `SUTRA_CACERT`.
enum CLIEnvironment {
    static func value(_ name: String) -> String? {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else { return nil }
        return v
    }
}

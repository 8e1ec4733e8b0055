extension NodeServer {
    /// The client-authentication families of `GET /metrics`.
    func renderAuthMetrics(into o: inout String) {
        let id = config.nodeID, a = clientAuth!
        o += "# HELP sutra_client_auth_refusals_total Client requests refused by token authorization (HTTP 401/403, binary UNAUTHENTICATED/PERMISSION_DENIED).\n"
        o += "# TYPE sutra_client_auth_refusals_total counter\n"
        o += "sutra_client_auth_refusals_total{node=\"\(id)\",reason=\"missing_token\"} \(a.refusedMissing)\n"
        o += "sutra_client_auth_refusals_total{node=\"\(id)\",reason=\"invalid_token\"} \(a.refusedInvalid)\n"
        o += "sutra_client_auth_refusals_total{node=\"\(id)\",reason=\"role_too_low\"} \(a.refusedForbidden)\n"
        o += "# HELP sutra_client_auth_enabled 1 when a tokens file is in force, 0 when clients are not authenticated.\n"
        o += "# TYPE sutra_client_auth_enabled gauge\n"
        o += "sutra_client_auth_enabled{node=\"\(id)\"} \(a.isOn ? 1 : 0)\n"
        o += "# HELP sutra_client_tokens Tokens accepted now.\n# TYPE sutra_client_tokens gauge\n"
        o += "sutra_client_tokens{node=\"\(id)\"} \(a.tokens?.entries.count ?? 0)\n"
        o += "# HELP sutra_client_token_reload_failures_total SIGHUP reloads of the tokens file refused (the previous tokens stayed).\n"
        o += "# TYPE sutra_client_token_reload_failures_total counter\n"
        o += "sutra_client_token_reload_failures_total{node=\"\(id)\"} \(a.reloadsFailed)\n"
    }
}

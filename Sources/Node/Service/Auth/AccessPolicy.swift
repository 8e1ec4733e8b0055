import Auth
import NodeCore

/// Which role each request needs: the single table both front ends consult.
///
/// Reads (concepts, neighbours, paths, search, the cluster view) need `read`; writes (put, conditional put,
/// delete, associate, dissociate, batch) `write`; flush, leadership transfer and every `/v1/admin/...` route `admin`.
/// `/health` and `/ready` are open; `/metrics` is open unless `metricsNeedToken` (then `read`).
enum AccessPolicy {
    static func role(for op: ClientOp) -> Role {
        switch op {
        case .get, .neighbors, .path, .search, .cluster: return .read
        case .put, .putIf, .patch, .delete, .associate, .dissociate, .batch: return .write
        case .flush, .transferLeader, .fsyncDelay, .membership: return .admin
        }
    }

    /// The role an HTTP request needs before its body is even decoded; nil: open. `route` is
    /// `HTTPFrontEnd.route`'s name (nil for an unknown path, which still needs a token — `read` for GET and HEAD,
    /// `write` otherwise — so a stranger cannot map the API).
    /// `parts` are the path's non-empty segments.
    static func role(httpMethod method: String, route: String?, parts: [String], metricsNeedToken: Bool) -> Role? {
        if parts.count >= 2 && parts[0] == "v1" && parts[1] == "admin" { return .admin }
        switch (method, route) {
        case (_, "health"), (_, "ready"): return nil
        case (_, "metrics"): return metricsNeedToken ? .read : nil
        case (_, "flush"), (_, "seed-flush"), (_, "transfer-leader"), (_, "fsync-delay"), (_, "digest"): return .admin
        case ("GET", _), ("HEAD", _), ("POST", "search"), ("POST", "seed-search"), ("POST", "query"): return .read
        default: return .write   // every other method on a data route changes data
        }
    }
}

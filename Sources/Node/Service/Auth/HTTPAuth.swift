import Auth
import HTTP

extension HTTPFrontEnd {
    /// The HTTP front end's one authorization point: nil lets the request proceed, else the refusal to send —
    /// 401 with `WWW-Authenticate: Bearer` (no or invalid token), 403 (role too low). Runs before the body is
    /// decoded.
    func authorizationRefusal(_ req: HTTPRequest, route: String?, parts: [String], source: String) -> HTTPResponse? {
        let auth = node.clientAuth!
        guard auth.isOn else { return nil }
        let needed = AccessPolicy.role(httpMethod: req.method, route: route, parts: parts, metricsNeedToken: auth.settings.metricsNeedToken)
        guard needed != nil else { return nil }
        let presented = BearerToken.parse(req.headers["authorization"]).map { TokenDigest(token: $0) }
        let d = auth.check(needed: needed, presented: presented, source: "http " + source, what: "\(req.method) \(req.path)", now: node.nanos)
        return HTTPFrontEnd.refusalResponse(d)
    }

    /// The response for a refusal (nil for `.allowed`).
    static func refusalResponse(_ d: AccessDecision) -> HTTPResponse? {
        var r: HTTPResponse
        switch d {
        case .allowed: return nil
        case .unauthenticated(let missing):
            r = errorResponse(status: 401, code: "UNAUTHENTICATED", d.message)
            r.headers.add("WWW-Authenticate", missing ? #"Bearer realm="sutra""# : #"Bearer realm="sutra", error="invalid_token""#)
        case .forbidden(_, _, let needed):
            r = errorResponse(status: 403, code: "PERMISSION_DENIED", d.message)
            r.headers.add("WWW-Authenticate", #"Bearer realm="sutra", error="insufficient_scope", scope="\#(needed)""#)
        }
        return r
    }
}

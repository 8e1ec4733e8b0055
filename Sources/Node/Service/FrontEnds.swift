import UV

extension NodeServer {
    /// Starts the client front ends (binary protocol and HTTP/JSON).
    func startFrontEnds() throws {
        let http = HTTPFrontEnd(node: self)
        try http.start(host: config.listenHost, port: config.httpPort)
        front.append(http)
    }

    func stopFrontEnds() {
        for f in front {
            (f as? HTTPFrontEnd)?.stop()
        }
        front = []
    }
}

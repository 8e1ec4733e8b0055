import UV

extension NodeServer {
    /// Starts the client front ends (binary protocol and HTTP/JSON).
    func startFrontEnds() throws {
    }

    func stopFrontEnds() {
        for f in front { (f as? UVHandle)?.close() }
        front = []
    }
}

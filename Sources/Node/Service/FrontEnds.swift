import NodeCore
import UV

extension NodeServer {
    /// Starts the client front ends: the binary protocol (SDK) and HTTP/JSON (curl).
    func startFrontEnds() throws {
        try clientPorts.start()
        let binary = BinaryFrontEnd(node: self)
        try binary.start(host: config.listenHost, port: config.clientPort)
        binaryFrontEnd = binary
        let http = HTTPFrontEnd(node: self)
        try http.start(host: config.listenHost, port: config.httpPort)
        httpFrontEnd = http
    }

    func stopFrontEnds() {
        binaryFrontEnd?.stop()
        httpFrontEnd?.stop()
        binaryFrontEnd = nil
        httpFrontEnd = nil
        clientPorts.stop()
    }
}

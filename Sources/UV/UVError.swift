import CUV

/// A libuv error: the operation, libuv's error name (e.g. `ECONNREFUSED`) and its message.
public struct UVError: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: Int32
    public let operation: String

    public init(_ code: Int32, _ operation: String) {
        self.code = code
        self.operation = operation
    }

    public var name: String { String(cString: uv_err_name(code)) }
    public var message: String { String(cString: uv_strerror(code)) }
    public var description: String { "\(operation): \(name) (\(message))" }

    public static let connectionRefused = Int32(UV_ECONNREFUSED.rawValue)
    public static let canceled = Int32(UV_ECANCELED.rawValue)
    public static let endOfFile = Int32(UV_EOF.rawValue)

    /// Throws if a libuv call returned a negative status.
    static func check(_ status: Int32, _ operation: String) throws(UVError) {
        if status < 0 { throw UVError(status, operation) }
    }
}

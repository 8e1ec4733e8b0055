/// A failure the CLI reports as one clear message (without the usage text ArgumentParser adds to
/// validation errors).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

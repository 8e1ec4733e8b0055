// sutra-node: one Sutra node process. See `sutra-node --help` and docs/OPERATIONS.md.
import Node
import Foundation

// A flag the parser does not know, or a value of the wrong kind, is a configuration refusal like any other
// (exit 78, which the systemd unit does not restart); --help and --version still exit 0.
do {
    var command = try NodeCommand.parseAsRoot()
    try command.run()
} catch {
    let code = NodeCommand.exitCode(for: error)
    if code.rawValue == 64 {   // EX_USAGE: the argument parser's own refusal
        FileHandle.standardError.write(Data("sutra-node: invalid configuration: \(NodeCommand.message(for: error))\n".utf8))
        exit(NodeExit.configurationRefused)
    }
    NodeCommand.exit(withError: error)
}

import ArgumentParser
import Foundation

/// `sutra node …`: one node of a local cluster (`sutra cluster up`).
struct NodeOpsCommand: ParsableCommand {
    /// A node command line with `drop` flags removed and `set` flags (`--flag value` pairs, or switches)
    /// replacing or added. A flag is a switch when the word after it is another flag or the end.
    static func edit(_ args: [String], drop: [String], set: [String]) -> [String] {
        func split(_ a: [String]) -> [(flag: String, value: String?)] {
            var out: [(String, String?)] = []
            var i = 0
            while i < a.count {
                if i + 1 < a.count, !a[i + 1].hasPrefix("--") { out.append((a[i], a[i + 1])); i += 2 } else { out.append((a[i], nil)); i += 1 }
            }
            return out
        }
        var pairs = split(args).filter { !drop.contains($0.flag) }
        for (flag, value) in split(set) {
            if let j = pairs.firstIndex(where: { $0.flag == flag }) { pairs[j].value = value } else { pairs.append((flag, value)) }
        }
        return pairs.flatMap { [$0.flag] + ($0.value.map { [$0] } ?? []) }
    }

    static let configuration = CommandConfiguration(commandName: "node", abstract: "Operate one node of a local cluster; change the cluster's membership.",
                                                    subcommands: [Restart.self, MembershipCommand.Add.self, MembershipCommand.Drain.self,
                                                                  MembershipCommand.Remove.self, MembershipCommand.Replace.self, MembershipCommand.Join.self])

    /// Stops one node gracefully and starts it again with the command line it ran — or another binary, one node
    /// at a time for a rolling upgrade — then waits until it is ready again.
    struct Restart: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restart one node of a local cluster (graceful stop, same flags), optionally on another sutra-node binary.")
        @Argument(help: "The node's id.") var id: Int
        @Option(help: "Data directory given to `cluster up`.") var data = "./sutra-cluster"
        @Option(help: "Start it from this sutra-node binary (a rolling upgrade; default: the one it ran).") var nodeBinary: String?
        @Option(help: "Seconds to wait for the graceful stop before SIGKILL.") var timeout = 10.0
        @Option(help: "Seconds to wait for the restarted node to be ready.") var readyTimeout = 30.0
        @Option(help: "Remove this flag (its name with or without the dashes: peer-tls) and its value from the node's command line; repeatable.")
        var dropFlag: [String] = []
        @Flag(help: "Delete the node's data directory before starting it: it rejoins empty and catches up from its peers (snapshots, then the log) — a machine whose disk died, replaced. Refused unless every other node is ready.")
        var wipeData = false
        @Argument(parsing: .postTerminator, help: "Flags to set on the node's command line (after --): each replaces the same flag's value, or is added. Recorded for later restarts.")
        var setFlags: [String] = []

        func run() throws {
            let dir = URL(fileURLWithPath: data).standardizedFileURL.path
            var cluster = try LocalCluster.load(dir)
            guard let i = cluster.nodes.firstIndex(where: { $0.id == id }) else {
                throw CLIError("no node \(id) in \(dir) (its nodes: \(cluster.nodes.map { String($0.id) }.joined(separator: ", ")))")
            }
            var n = cluster.nodes[i]
            if wipeData {
                // Its replicas can come back only from the others: each shard needs them to hold a majority.
                let notReady = cluster.nodes.filter { $0.id != id }.filter { other in
                    if case .ready = other.startState(tls: cluster.clientTLS) { return false }
                    return true
                }
                if !notReady.isEmpty {
                    throw CLIError("node(s) \(notReady.map { String($0.id) }.joined(separator: ", ")) not ready: node \(id)'s data would have nowhere to come back from; not wiped")
                }
            }
            let binary = nodeBinary.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            if let binary, !FileManager.default.isExecutableFile(atPath: binary) { throw CLIError("sutra-node not found at \(binary)") }
            switch n.stop(timeout: timeout) {
            case .notRunning: print("node \(id) (pid \(n.pid)) was not running")
            case .stopped: print("node \(id) (pid \(n.pid)) stopped")
            case .killed: print("node \(id) (pid \(n.pid)) did not stop in \(timeout) s: killed")
            }
            // Its ports are free once the process is gone (a listener closes with it); wait a moment if not yet.
            let portsFree = Date().addingTimeInterval(5)
            while !n.namedPorts.allSatisfy({ portIsFree($0.port) }) && Date() < portsFree { usleep(50_000) }
            for (what, port) in n.namedPorts where !portIsFree(port) {
                throw CLIError("port \(port) (node \(id)'s \(what) port) is still in use; node \(id) was not started again")
            }
            if !dropFlag.isEmpty || !setFlags.isEmpty {
                guard let args = n.args else { throw CLIError("\(LocalCluster.path(dir)) records no command line for node \(id)") }
                cluster.nodes[i].args = NodeOpsCommand.edit(args, drop: dropFlag.map { $0.hasPrefix("--") ? $0 : "--" + $0 }, set: setFlags)
            }
            if wipeData {
                let nodeDir = "\(dir)/node\(id)"
                do { try FileManager.default.removeItem(atPath: nodeDir) } catch { throw CLIError("cannot delete \(nodeDir): \(error)") }
                print("node \(id): data directory \(nodeDir) deleted; it rejoins empty")
            }
            let started = Date()
            try cluster.respawn(i, binary: binary, dir: dir)
            n = cluster.nodes[i]
            let deadline = Date().addingTimeInterval(readyTimeout)
            let tls = cluster.clientTLS
            var state = n.startState(tls: tls)
            while case .starting = state {
                guard Date() < deadline else { throw CLIError("node \(id) (pid \(n.pid)) not ready after \(readyTimeout) s; see \(n.log)") }
                usleep(100_000)
                state = n.startState(tls: tls)
            }
            if case .exited(let why) = state { throw CLIError(why) }
            print("node \(id) restarted: pid \(n.pid), \(n.binary ?? "?"), ready in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        }
    }
}

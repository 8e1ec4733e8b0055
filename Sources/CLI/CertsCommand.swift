import ArgumentParser
import Foundation
import TLS

/// `sutra certs init`: the cluster CA and one key + certificate per node (its identity URI
/// `sutra://<cluster>/node/<id>` and DNS/IP names for its host), plus an operator's client certificate.
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "certs", abstract: "Create the certificates of a cluster (mutual TLS between nodes).",
                                                    subcommands: [Init.self, AddNode.self])

    /// A node added to a running cluster gets its certificate from the existing CA.
    struct AddNode: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-node",
            abstract: "Issue a new node's key and certificate from the cluster CA in DIR (before `sutra node add` and starting it with --join).")
        @Option(help: "The directory `sutra certs init` wrote (holds ca.key).") var out: String
        @Option(help: "Cluster id, as given to every node with --cluster-id.") var clusterId = "sutra"
        @Option(help: "The new node's id (never used in this cluster before).") var id: UInt64
        @Option(help: "Its host name or IP (loopback is always included).") var host: String?
        @Option(help: "Days the certificate is valid.") var days = 825

        func run() throws {
            guard (1...36_500).contains(days) else { throw ValidationError("--days is \(days); allowed: 1…36500") }
            let c = ClusterCertificates(directory: out)
            do {
                try c.addNode(clusterID: clusterId, id: id, host: host, validDays: days)
            } catch {
                throw CLIError("sutra certs add-node: \(error)")
            }
            print("Created node \(id)'s certificate: --tls-cert \(c.nodeCertificate(id)) --tls-key \(c.nodeKey(id)) --tls-ca \(c.caCertificate)")
        }
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a cluster CA, per-node keys and certificates (ECDSA P-256) and an operator client certificate.",
            discussion: """
            Writes DIR/ca.crt, ca.key (0600), node-<id>.crt, node-<id>.key (0600), client.crt, client.key (0600).
            Give each node its node-<id>.crt/.key and ca.crt (--tls-cert, --tls-key, --tls-ca); keep ca.key offline.
            """)
        @Option(help: "Directory to write into (created 0700; an existing ca.key is never overwritten).") var out: String
        @Option(help: "Cluster id, as given to every node with --cluster-id.") var clusterId = "sutra"
        @Option(help: "Number of nodes (ids 1…N).") var nodes = 3
        @Option(help: "Each node's host name or IP, comma-separated, node 1 first (loopback is always included).") var hosts: String?
        @Option(help: "Days the node and client certificates are valid (the CA: ten times as long).") var days = 825

        func run() throws {
            let hostList = hosts.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? []
            guard (1...36_500).contains(days) else { throw ValidationError("--days is \(days); allowed: 1…36500") }
            do {
                try ClusterCertificates(directory: out).create(clusterID: clusterId, nodes: nodes, hosts: hostList, validDays: days)
            } catch {
                throw CLIError("sutra certs init: \(error)")
            }
            let c = ClusterCertificates(directory: out)
            print("Created the CA of cluster \(clusterId) and certificates for nodes 1…\(nodes) in \(out)")
            print("  node i: --cluster-id \(clusterId) --tls-cert \(c.nodeCertificate(1).replacingOccurrences(of: "node-1", with: "node-<i>")) --tls-key \(c.nodeKey(1).replacingOccurrences(of: "node-1", with: "node-<i>")) --tls-ca \(c.caCertificate)")
            print("  keep \(c.caKey) off the nodes")
        }
    }
}

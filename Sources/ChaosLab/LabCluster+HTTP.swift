import Foundation
import HTTP

/// One HTTP answer; status 0 means no answer (refused, timed out, not HTTP).
public struct HTTPReply: Sendable {
    public var status: Int
    public var body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }
    /// The node a 421 NOT_LEADER names (`error.leader`), if any.
    public var leaderHint: Int? {
        guard status == 421, let o = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
              let e = o["error"] as? [String: Any], let l = (e["leader"] as? NSNumber)?.intValue, l > 0 else { return nil }
        return l
    }
}

/// Talking to the nodes over HTTP from the test process (the root namespace): readiness, cluster views,
/// leaders, and requests that follow NOT_LEADER hints.
extension LabCluster {
    /// One request to node `id`'s HTTP port.
    public func http(_ id: Int, _ method: String, _ path: String, body: String = "", timeout: Double = 2) -> HTTPReply {
        guard let p = try? node(id),
              let (status, bytes) = BlockingHTTPClient.request(method, host: p.spec.host, port: p.spec.httpPort, path: path,
                                                               body: Array(body.utf8), timeout: timeout) else {
            return HTTPReply(status: 0, body: [])
        }
        return HTTPReply(status: status, body: bytes)
    }

    /// Sends to node `via`, following 421 NOT_LEADER to the node it names (up to `hops` times).
    public func httpToLeader(via: Int, _ method: String, _ path: String, body: String = "", timeout: Double = 2, hops: Int = 4) -> HTTPReply {
        var target = via
        var reply = http(target, method, path, body: body, timeout: timeout)
        for _ in 0..<hops {
            guard let next = reply.leaderHint, next != target else { break }
            target = next
            reply = http(target, method, path, body: body, timeout: timeout)
        }
        return reply
    }

    /// Node `id`'s view of the cluster, nil if it does not answer.
    public func view(of id: Int, timeout: Double = 1) -> ClusterView? {
        let r = http(id, "GET", "/v1/cluster", timeout: timeout)
        return r.status == 200 ? ClusterView(json: r.body) : nil
    }

    /// The views of every running (not paused, not stopped) node that answers.
    public func views(timeout: Double = 1) -> [ClusterView] {
        processes.filter { $0.state == .running }.compactMap { view(of: $0.id, timeout: timeout) }
    }

    /// Each shard's leader: among the answering nodes, the one whose own replica says `leader` in the highest
    /// term (a deposed leader that has not noticed yet loses to the newer term). Shards without one are absent.
    public func leaders(timeout: Double = 1) -> [Int: Int] {
        var best: [Int: (node: Int, term: UInt64)] = [:]
        for v in views(timeout: timeout) {
            for s in v.shards where s.role == "leader" {
                if let b = best[s.shard], b.term >= s.term { continue }
                best[s.shard] = (v.nodeID, s.term)
            }
        }
        return best.mapValues(\.node)
    }

    /// The leader of `shard`, per `leaders()`.
    public func leaderOf(shard: Int, timeout: Double = 1) -> Int? { leaders(timeout: timeout)[shard] }

    /// Waits until some node other than those in `excluding` leads `shard`; returns it.
    public func waitForLeader(shard: Int, excluding: Set<Int> = [], timeout: Double = 15) throws -> Int {
        let deadline = Monotonic.seconds() + timeout
        while true {
            if let l = leaderOf(shard: shard), !excluding.contains(l) { return l }
            if Monotonic.seconds() > deadline {
                throw LabError.timeout("no leader of shard \(shard) outside \(excluding.sorted()) after \(timeout) s (leaders now \(leaders()))")
            }
            usleep(50_000)
        }
    }

    /// Waits until every shard has a leader among the running nodes.
    public func waitForAllLeaders(timeout: Double = 15) throws -> [Int: Int] {
        let deadline = Monotonic.seconds() + timeout
        while true {
            let l = leaders()
            if l.count == options.shards { return l }
            if Monotonic.seconds() > deadline {
                throw LabError.timeout("after \(timeout) s only shards \(l.keys.sorted()) of \(options.shards) have a leader")
            }
            usleep(50_000)
        }
    }

    /// Waits until each listed node (default: every running one) answers `GET /ready` with 200; throws with the
    /// log tail if one exits meanwhile.
    public func waitReady(_ ids: [Int]? = nil, timeout: Double = 30) throws {
        var pending = Set(ids ?? processes.filter { $0.state == .running }.map(\.id))
        let deadline = Monotonic.seconds() + timeout
        while !pending.isEmpty {
            for id in pending.sorted() {
                let p = try node(id)
                if p.checkExited() != nil { throw LabError.nodeExited(id, p.logTail(2000)) }
                if http(id, "GET", "/ready", timeout: 0.5).status == 200 { pending.remove(id) }
            }
            if pending.isEmpty { return }
            if Monotonic.seconds() > deadline { throw LabError.timeout("nodes \(pending.sorted()) not ready after \(timeout) s") }
            usleep(50_000)
        }
    }

    /// Slows node `id`'s disk: each WAL write sleeps `ms` before its fdatasync (0: healthy again). The node must
    /// run with `--enable-fault-injection`. Tries three times (a node busy recovering may not answer at once).
    public func setFsyncDelay(_ id: Int, ms: Int) throws {
        var last = HTTPReply(status: 0, body: [])
        for attempt in 0..<3 {
            last = http(id, "POST", "/v1/admin/fault/fsync-delay?ms=\(ms)", timeout: 2)
            if last.status == 200 { return }
            if last.status != 0 { break }
            if attempt < 2 { usleep(200_000) }
        }
        throw LabError.invalid("node \(id) refused the fsync delay \(ms) ms: HTTP \(last.status) \(last.text)")
    }
}

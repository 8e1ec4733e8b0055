import Raft

/// A bounded log of simulation events, formatted only when someone reads it (on failure or `--trace`).
struct Trace {
    enum Event {
        case send(Message, deliverAt: UInt64)
        case deliver(Message)
        case drop(Message, why: String)
        case crash(NodeID, keptInFlight: Bool)
        case restart(NodeID)
        case partition(String)
        case heal
        case role(NodeID, RaftRole, term: Term, leader: NodeID)
        case propose(NodeID, index: LogIndex, term: Term)
        case ack(NodeID, index: LogIndex)
        case read(NodeID, id: UInt64, served: LogIndex, required: LogIndex)
        case snapshot(NodeID, index: LogIndex)
        case install(NodeID, index: LogIndex)
        case transfer(from: NodeID, to: NodeID)
        case confChange(NodeID, String)
        case note(String)
    }

    var events: [(UInt64, Event)] = []
    let capacity: Int
    let printLive: Bool

    init(capacity: Int, printLive: Bool) {
        self.capacity = capacity
        self.printLive = printLive
    }

    mutating func record(_ t: UInt64, _ e: Event) {
        if printLive { print(Trace.format(t, e)) }
        events.append((t, e))
        if events.count > capacity * 2 { events.removeFirst(events.count - capacity) }
    }

    func lines() -> [String] { events.suffix(capacity).map { Trace.format($0.0, $0.1) } }

    static func describe(_ m: Message) -> String {
        var s = "\(m.type) \(m.from)→\(m.to) term=\(m.term)"
        switch m.type {
        case .append:
            s += " prev=(\(m.index),\(m.logTerm)) n=\(m.entries.count) commit=\(m.commit)"
            if let f = m.entries.first, let l = m.entries.last { s += " [\(f.index)..\(l.index)]" }
        case .appendResponse:
            s += m.reject ? " REJECT idx=\(m.index) hint=(\(m.rejectHint),\(m.logTerm))" : " ok idx=\(m.index)"
        case .vote, .preVote:
            s += " last=(\(m.index),\(m.logTerm))" + (m.context == Message.transferContext ? " transfer" : "")
        case .voteResponse, .preVoteResponse:
            s += m.reject ? " REJECT" : " GRANT"
        case .heartbeat:
            s += " commit=\(m.commit) round=\(m.context)"
        case .heartbeatResponse:
            s += " round=\(m.context)"
        case .snapshot:
            s += " snap=(\(m.snapshot?.metadata.index ?? 0),\(m.snapshot?.metadata.term ?? 0))"
        case .timeoutNow:
            break
        }
        return s
    }

    static func format(_ t: UInt64, _ e: Event) -> String {
        let when = "t=\(t / Simulation.unitsPerTick).\(t % Simulation.unitsPerTick)"
        switch e {
        case .send(let m, let at): return "\(when) send \(describe(m)) (arrives t=\(at / Simulation.unitsPerTick).\(at % Simulation.unitsPerTick))"
        case .deliver(let m): return "\(when) recv \(describe(m))"
        case .drop(let m, let why): return "\(when) DROP(\(why)) \(describe(m))"
        case .crash(let n, let kept): return "\(when) CRASH node \(n)" + (kept ? " (its unsynced write reached disk)" : " (unsynced write lost)")
        case .restart(let n): return "\(when) RESTART node \(n) from durable state"
        case .partition(let d): return "\(when) PARTITION \(d)"
        case .heal: return "\(when) HEAL all links"
        case .role(let n, let r, let term, let l): return "\(when) node \(n) is \(r) term=\(term) leader=\(l)"
        case .propose(let n, let i, let term): return "\(when) node \(n) proposed write at (\(i),\(term))"
        case .ack(let n, let i): return "\(when) node \(n) acknowledged write at \(i)"
        case .read(let n, let id, let served, let req): return "\(when) node \(n) served read #\(id) at applied=\(served) (needed ≥ \(req))"
        case .snapshot(let n, let i): return "\(when) node \(n) snapshot+compact at \(i)"
        case .install(let n, let i): return "\(when) node \(n) installed snapshot at \(i)"
        case .transfer(let f, let to): return "\(when) leader \(f) transfers leadership to \(to)"
        case .confChange(let n, let d): return "\(when) leader \(n) proposes \(d)"
        case .note(let s): return "\(when) \(s)"
        }
    }
}

import ChaosCheck
import SutraClient

extension Workload {
    /// One cross-shard batch of `plan` through the SDK's `batch`, recorded as one `batch` event with its items
    /// (puts of fresh values, deletes); when acknowledged, the same process reads `plan.readKey` at once
    /// (read-your-writes: the read must see the batch's write of it). A failed batch changed nothing; a delete of
    /// a register that turned out absent fails it with not-found, after which the process no longer assumes
    /// those registers present.
    func batch(_ client: SutraClient, _ plan: BatchPlan, _ s: inout ProcessState) async {
        var records = [BatchItemRecord]()
        var items = [BatchItem]()
        for item in plan.items {
            let id = keyIDs[item.key]!
            if item.delete {
                records.append(.delete(item.key))
                items.append(.delete(id))
            } else {
                let value = s.freshValue()
                records.append(.put(item.key, value))
                items.append(.put(NewConcept(id: id, content: Array(value.utf8))))
            }
        }
        history.recordBatch(process: s.process, .invoke, items: records, time: Workload.now())
        do {
            _ = try await client.batch(items)
            history.recordBatch(process: s.process, .ok, items: records, time: Workload.now())
            for r in records { s.lastSeen[r.key] = .some(r.value) }
            counts.withLock { $0.ok += 1 }
            batchCounts.withLock { $0.ok += 1 }
            readsAfterBatch.withLock { $0 += 1 }
            await read(client, plan.readKey, &s)
        } catch let e as SutraError where Workload.definitelyNotApplied(e) {
            history.recordBatch(process: s.process, .fail, items: records, time: Workload.now())
            counts.withLock { $0.fail += 1 }
            batchCounts.withLock { $0.fail += 1 }
            if case .notFound = e { for r in records where r.f == .delete { s.lastSeen[r.key] = nil } }
        } catch {
            history.recordBatch(process: s.process, .info, items: records, time: Workload.now())
            counts.withLock { $0.info += 1 }
            batchCounts.withLock { $0.info += 1 }
            s.lostTrack()
        }
    }
}

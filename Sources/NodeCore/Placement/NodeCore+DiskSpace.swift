import Raft

/// A full disk, as operators expect it: client writes are refused with a clear error (`ClientError.Code.diskFull`,
/// HTTP 507) while the data directory's file system is below its free-space floor or a WAL write found no space;
/// reads go on being served; writes resume by themselves once space returns. Nothing is ever acknowledged that is
/// not durable: a WAL write that finds no space is not abandoned (which would stop the node) but tried again,
/// unchanged, every `NodeCore.stalledWriteRetryTicks`, and everything that waits for it keeps waiting.
///
/// A stalled write also counts as a very slow disk (`DiskHealth`): the node hands its leaderships to a peer whose
/// disk keeps up, so the shards it led serve writes again from there while its own disk is full.
///
/// The driver reports two facts: the free space it measures (`diskSpace(freeBytes:)`, about once a second) and a
/// write that failed for lack of space (`writeStalled(now:error:)`); the decisions are here, where the cluster
/// simulation runs them too.
extension NodeCore {
    /// How often a stalled WAL write is tried again.
    package var stalledWriteRetryTicks: UInt64 { UInt64(max(1, 1000 / config.tickMs)) }

    /// The driver measured `freeBytes` available to this node on its data directory's file system.
    package func diskSpace(freeBytes: UInt64) {
        metrics.diskFreeBytes = freeBytes
        let low = config.minFreeDiskBytes > 0 && freeBytes < config.minFreeDiskBytes
        guard low != diskLow else { return }
        diskLow = low
        if low {
            logger.warning("disk nearly full: \(mib(freeBytes)) free on the data directory's file system, below the floor of \(mib(config.minFreeDiskBytes)) (--min-free-disk-bytes); client writes are refused (DISK_FULL) until space returns, reads are served")
        } else {
            logger.notice("disk space returned: \(mib(freeBytes)) free (floor \(mib(config.minFreeDiskBytes))); client writes are accepted again")
        }
    }

    /// The write handed to `io.startWrite` failed for lack of space (nothing of it counts as durable). It is
    /// tried again, unchanged, after `stalledWriteRetryTicks` (`io.retryWrite`), until it goes through.
    package func writeStalled(now: UInt64, error: String) {
        advanceClock(to: now)
        precondition(commit.writeInFlight, "a write stalled while none is in flight")
        if stalledWrite == nil {
            stalledWrite = (since: now, attempts: 0)
            logger.error("WAL write found no space (\(error)): it waits and is retried every \(stalledWriteRetryTicks) ticks; nothing waiting for it is acknowledged, client writes are refused (DISK_FULL), reads are served")
        }
        stalledWrite!.attempts += 1
        metrics.walWriteStalls += 1
        // The write has been in flight this long: a disk that slow hands its leaderships to a peer that keeps up.
        // Capped like a peer's unanswered append (`DiskHealth.sampleCapMs`), so among nodes whose disks are all
        // full nobody looks faster and leadership does not move to a node that cannot write either.
        let stalledMs = min(Double(now &- stalledWrite!.since) / 1e6 + Double(config.slowDiskMs), DiskHealth.sampleCapMs)
        diskHealth.wrote(nanos: UInt64(stalledMs * 1e6))
        let stallStarted = stalledWrite!.since
        after(ticks: stalledWriteRetryTicks) { [weak self] in
            // Only for this stall: the write may have gone through (and another stalled) meanwhile.
            guard let self, let s = self.stalledWrite, s.since == stallStarted else { return }
            self.io.retryWrite()
        }
        moveLeadershipOffASlowDisk()
    }

    /// Why a client write must be refused here now (nil: it may go ahead).
    var diskFullRefusal: ClientError? {
        if let s = stalledWrite {
            return ClientError(.diskFull, "node \(config.nodeID): the disk is full: a WAL write has found no space \(s.attempts) time(s) (retried every second); writes are refused until space returns, reads are served")
        }
        if diskLow {
            return ClientError(.diskFull, "node \(config.nodeID): the disk is nearly full: \(mib(metrics.diskFreeBytes)) free, below the floor of \(mib(config.minFreeDiskBytes)); writes are refused until space returns, reads are served")
        }
        return nil
    }

    /// A stalled write went through: the disk has space again.
    func stalledWriteWentThrough() {
        guard let s = stalledWrite else { return }
        stalledWrite = nil
        logger.notice("WAL write went through after \(s.attempts) attempt(s) without space, \((now &- s.since) / 1_000_000) ms after the first; writes resume")
    }
}

private func mib(_ bytes: UInt64) -> String {
    bytes >= 10 << 20 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
}

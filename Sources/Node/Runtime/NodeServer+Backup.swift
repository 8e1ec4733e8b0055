import Codec
import NodeCore
import Release
import Shard

/// One online backup's images, held by the node that took them until its taker has fetched every shard
/// (`DELETE /v1/admin/backup/{id}`) or it sits idle for `NodeServer.heldBackupIdleMs`. The images share their
/// storage with the live shards copy-on-write: holding them costs what the shards change meanwhile.
final class HeldBackup {
    let id: UInt64
    let images: [ShardContentImage]
    let digests: [ShardDigest]
    var lastUsedMs: UInt64

    init(id: UInt64, images: [ShardContentImage], digests: [ShardDigest], lastUsedMs: UInt64) {
        precondition(images.map(\.shard) == Array(0..<images.count), "one image per shard, in shard order")
        precondition(digests.map(\.shard) == images.map(\.shard), "one digest per image")
        self.id = id
        self.images = images
        self.digests = digests
        self.lastUsedMs = lastUsedMs
    }
}

/// The node's side of `sutra backup`: `POST /v1/admin/backup` takes the images (`NodeCore.captureBackup`) and
/// answers the manifest; `GET /v1/admin/backup/{id}/shards/{s}` answers one shard's backup file, encoded on the
/// thread pool; `DELETE /v1/admin/backup/{id}` lets the images go. One backup at a time per node.
extension NodeServer {
    static let heldBackupIdleMs: UInt64 = 10 * 60 * 1000

    func takeBackup(fenceSeconds: Int, waitSeconds: Int, _ done: @escaping (Result<[UInt8], ClientError>) -> Void) {
        if let held = heldBackup {
            done(.failure(ClientError(.unavailable, "backup \(fixedHex(held.id)) is held on this node for its taker; DELETE /v1/admin/backup/\(fixedHex(held.id)) or wait until it has been idle \(NodeServer.heldBackupIdleMs / 60_000) minutes")))
            return
        }
        guard !backupTaking else { done(.failure(ClientError(.unavailable, "a backup is already being taken through this node; retry when it ends"))); return }
        backupTaking = true
        let id = UInt64.random(in: 1...UInt64.max)
        let started = loop.now
        let tick = UInt64(config.tickMs)
        core.advanceClock(to: nanos)
        core.captureBackup(id: id, fenceTicks: UInt32(clamping: UInt64(fenceSeconds) * 1000 / tick),
                           waitTicks: UInt64(waitSeconds) * 1000 / tick) { [unowned self] result in
            switch result {
            case .failure(let e):
                self.backupTaking = false
                self.logger.warning("backup \(fixedHex(id)) not taken: \(e.message)")
                done(.failure(e))
            case .success(let images):
                let consistentAfterMs = self.loop.now - started
                do {
                    try self.loop.queueWork({ images.map(ShardDigest.compute) }, completion: { [unowned self] digests in
                        self.backupTaking = false
                        self.heldBackup = HeldBackup(id: id, images: images, digests: digests, lastUsedMs: self.loop.now)
                        self.logger.notice("backup \(fixedHex(id)) taken: \(images.reduce(0) { $0 + $1.conceptCount }) concepts in \(images.count) shards, consistent after \(consistentAfterMs) ms; held for its taker")
                        done(.success(JSONReply.backupManifest(id: id, digests: digests, config: self.config, consistentAfterMs: consistentAfterMs)))
                    })
                } catch {
                    self.backupTaking = false
                    done(.failure(ClientError(.unavailable, "cannot hash the backup's shards: \(error)")))
                }
            }
        }
    }

    /// One shard's backup file and its SHA-256.
    func backupShard(id: UInt64, shard: Int, _ done: @escaping (Result<(bytes: [UInt8], sha256: [UInt8]), ClientError>) -> Void) {
        guard let held = heldBackup, held.id == id else {
            done(.failure(ClientError(.notFound, "no backup \(fixedHex(id)) is held on this node (it was released, sat idle \(NodeServer.heldBackupIdleMs / 60_000) minutes, or the node restarted); take a new one")))
            return
        }
        guard held.images.indices.contains(shard) else {
            done(.failure(ClientError(.invalidArgument, "shard \(shard) is not in 0…\(held.images.count - 1)")))
            return
        }
        // One encoding at a time: each holds a whole shard's file in memory.
        guard !backupEncodingInFlight else { done(.failure(ClientError(.unavailable, "a shard of this backup is being encoded; fetch one shard at a time"))); return }
        backupEncodingInFlight = true
        held.lastUsedMs = loop.now
        let image = held.images[shard]
        do {
            try loop.queueWork({ () -> ([UInt8], [UInt8]) in
                let bytes = image.backupData()
                return (bytes, ShardDigest.sha256(bytes))
            }, completion: { [unowned self] (out: ([UInt8], [UInt8])) in
                self.backupEncodingInFlight = false
                held.lastUsedMs = self.loop.now
                done(.success((out.0, out.1)))
            })
        } catch {
            backupEncodingInFlight = false
            done(.failure(ClientError(.unavailable, "cannot encode shard \(shard): \(error)")))
        }
    }

    func releaseBackup(id: UInt64) -> Result<Void, ClientError> {
        guard let held = heldBackup, held.id == id else {
            return .failure(ClientError(.notFound, "no backup \(fixedHex(id)) is held on this node"))
        }
        heldBackup = nil
        logger.info("backup \(fixedHex(held.id)) released by its taker")
        return .success(())
    }

    /// Releases held images idle for `heldBackupIdleMs` (called on every tick while some are held).
    func dropIdleBackup() {
        if let held = heldBackup, loop.now >= held.lastUsedMs + NodeServer.heldBackupIdleMs {
            logger.warning("backup \(fixedHex(held.id)) sat idle \(NodeServer.heldBackupIdleMs / 60_000) minutes; its images are released")
            heldBackup = nil
        }
    }
}

extension JSONReply {
    /// `POST /v1/admin/backup`: what the backup holds, before its files are fetched.
    static func backupManifest(id: UInt64, digests: [ShardDigest], config: NodeConfig, consistentAfterMs: UInt64) -> [UInt8] {
        serialize([
            "backup_id": fixedHex(id),
            "cluster_id": config.clusterID,
            "node": config.nodeID,
            "shard_count": config.numShards,
            "dimension": config.dimension,
            "release": SutraRelease.version,
            "snapshot_format": ShardState.snapshotVersion,
            "consistent_after_ms": consistentAfterMs,
            "shards": digests.map { ["shard": $0.shard, "applied_index": $0.appliedIndex, "concepts": $0.concepts, "edges": $0.edges, "digest": $0.hex] as [String: Any] },
            "digest": lowerHex(ShardDigest.cluster(digests)),
        ] as [String: Any])
    }
}

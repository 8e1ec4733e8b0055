import Raft
import Shard
import NodeCore
import Release
import WAL

/// `GET /metrics`: the core's counters and the driver's own figures as Prometheus text.
extension NodeServer {
    func renderMetrics() -> String {
        let node: NodeCore = core, m = core.metrics
        var o = ""
        let id = node.config.nodeID
        func family(_ name: String, _ type: String, _ help: String) { o += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        /// One sample for the node.
        func nodeWide(_ name: String, _ type: String, _ help: String, _ value: Any) {
            family(name, type, help)
            o += "\(name){node=\"\(id)\"} \(value)\n"
        }
        /// One sample per shard replica.
        func perShard(_ name: String, _ type: String, _ help: String, _ value: (ShardReplica) -> Any) {
            family(name, type, help)
            for r in node.replicas { o += "\(name){node=\"\(id)\",shard=\"\(r.shard)\"} \(value(r))\n" }
        }
        // What runs here: the release and every format it speaks (CHANGELOG.md's compatibility table).
        family("sutra_build_info", "gauge", "Always 1; the labels name this build's release and the formats it writes and speaks.")
        o += "sutra_build_info{node=\"\(id)\",version=\"\(SutraRelease.version)\",peer_wire_max=\"\(PeerFrame.maxVersion)\","
            + "client_protocol_max=\"\(BinaryFrontEnd.maxVersion)\",wal_format=\"\(WALFormat.version)\","
            + "snapshot_format=\"\(ShardState.snapshotVersion)\",entry_format=\"\(ShardRequest.version)\"} 1\n"
        let p = ProcessStats.read()
        /// One sample without labels (the standard process_* names, as Prometheus clients write them).
        func process(_ name: String, _ type: String, _ help: String, _ value: Any) { family(name, type, help); o += "\(name) \(value)\n" }
        process("process_cpu_seconds_total", "counter", "User and system CPU time spent by the node process.", p.cpuSeconds)
        process("process_resident_memory_bytes", "gauge", "Resident memory of the node process.", p.residentBytes)
        process("process_virtual_memory_bytes", "gauge", "Virtual memory of the node process.", p.virtualBytes)
        process("process_open_fds", "gauge", "Open file descriptors (client connections, peer links, WAL segments, snapshots).", p.openDescriptors)
        process("process_max_fds", "gauge", "The descriptor limit (RLIMIT_NOFILE, soft).", p.maxDescriptors)
        process("process_start_time_seconds", "gauge", "When the node process started (unix seconds).", ProcessStats.startTime)
        perShard("sutra_concepts", "gauge", "Concepts stored in this node's replica of each shard.") { $0.state.conceptCount }
        perShard("sutra_associations", "gauge", "Edge records (out-edges plus in-edges) in this node's replica of each shard.") { $0.state.edgeCount }
        perShard("sutra_vectors", "gauge", "Embeddings indexed for k-NN search in each shard.") { node.vectors.count(shard: $0.shard) }
        nodeWide("sutra_vectors_pending", "gauge", "Embedding changes applied to the state and queued for the HNSW graph.", node.vectors.pendingCount)
        perShard("sutra_writes_total", "counter", "Client writes acknowledged by this node as shard leader.") { m.writes[$0.shard] }
        perShard("sutra_applied_entries_total", "counter", "Log entries with a command applied to each shard replica.") { $0.appliedWrites }
        nodeWide("sutra_requests_total", "counter", "Client requests received by this node.", m.requests)
        // Client authentication.
        let auth: ClientAuth = clientAuth
        family("sutra_client_auth_refusals_total", "counter", "Client requests refused by token authorization (HTTP 401/403, binary UNAUTHENTICATED/PERMISSION_DENIED).")
        for (reason, n) in [("missing_token", auth.refusedMissing), ("invalid_token", auth.refusedInvalid), ("role_too_low", auth.refusedForbidden)] {
            o += "sutra_client_auth_refusals_total{node=\"\(id)\",reason=\"\(reason)\"} \(n)\n"
        }
        nodeWide("sutra_client_auth_enabled", "gauge", "1 when a tokens file is in force, 0 when clients are not authenticated.", auth.isOn ? 1 : 0)
        nodeWide("sutra_client_tokens", "gauge", "Tokens accepted now.", auth.tokens?.entries.count ?? 0)
        nodeWide("sutra_client_token_reload_failures_total", "counter", "SIGHUP reloads of the tokens file refused (the previous tokens stayed).", auth.reloadsFailed)
        nodeWide("sutra_client_tls_reload_failures_total", "counter", "SIGHUP reloads of the client-port certificate refused (the previous one stayed).", clientTLS.reloadsFailed)
        if let notAfter = transport.security.server?.ownCertificate?.notAfter {
            nodeWide("sutra_peer_tls_certificate_not_after_seconds", "gauge", "When the peer certificate this node presents expires (unix seconds; rotate it and SIGHUP before then).", UInt64(clamping: notAfter))
        }
        nodeWide("sutra_peer_tls_reload_failures_total", "counter", "SIGHUP reloads of the peer certificate, key or CA refused (bad files, or a certificate naming another node; the previous ones stayed).", transport.certificateReloadsFailed)
        // Client flow control.
        let ports: ClientPorts = clientPorts
        family("sutra_client_connections", "gauge", "Client connections open, by port.")
        o += "sutra_client_connections{node=\"\(id)\",port=\"binary\"} \(binaryFrontEnd?.openConnections ?? 0)\n"
        o += "sutra_client_connections{node=\"\(id)\",port=\"http\"} \(httpFrontEnd?.openConnections ?? 0)\n"
        nodeWide("sutra_client_connection_cap", "gauge", "Most client connections open at once (--client-max-connections, fitted under the descriptor limit).", ports.connectionCap)
        nodeWide("sutra_client_connections_refused_total", "counter", "Client connections refused because the cap was reached.", ports.refusedAtCap)
        nodeWide("sutra_client_accept_failures_total", "counter", "Client accepts that failed (out of descriptors, say); the node kept serving.", ports.acceptFailures)
        family("sutra_client_timeouts_total", "counter", "Client connections ended by a timeout: a request not received in time (408), idle, or answers left unread (send_stall) for the idle timeout.")
        o += "sutra_client_timeouts_total{node=\"\(id)\",kind=\"request\"} \(ports.requestTimeouts)\n"
        o += "sutra_client_timeouts_total{node=\"\(id)\",kind=\"idle\"} \(ports.idleCloses)\n"
        o += "sutra_client_timeouts_total{node=\"\(id)\",kind=\"send_stall\"} \(ports.sendStalls)\n"
        family("sutra_client_read_pauses_total", "counter", "Times a client connection stopped being read, by reason (requests in flight at the cap, unsent answers over budget, the node's budget for partly received requests spent, pipelined requests waiting for the next turn's slice).")
        o += "sutra_client_read_pauses_total{node=\"\(id)\",reason=\"in_flight\"} \(ports.pausedForInFlight)\n"
        o += "sutra_client_read_pauses_total{node=\"\(id)\",reason=\"unsent\"} \(ports.pausedForUnsent)\n"
        o += "sutra_client_read_pauses_total{node=\"\(id)\",reason=\"budget\"} \(ports.pausedForBudget)\n"
        o += "sutra_client_read_pauses_total{node=\"\(id)\",reason=\"turn_slice\"} \(ports.pausedForBacklog)\n"
        nodeWide("sutra_client_partial_request_bytes", "gauge", "Bytes of partly received client requests held, all connections.", ports.partialBytes)
        nodeWide("sutra_client_offloop_decodes_total", "counter", "Big client requests decoded on the thread pool instead of the loop.", ports.offLoopDecodes)
        nodeWide("sutra_loop_max_tick_gap_seconds", "gauge", "Longest gap between two Raft ticks since the node started: the longest the loop was held (heartbeats wait that long).", Double(maxTickGapMs) / 1000)
        family("sutra_write_latency_seconds", "histogram", "Time from proposing a client write to applying it (leader).")
        for (s, h) in m.writeLatency.enumerated() { h.render("sutra_write_latency_seconds", labels: "node=\"\(id)\",shard=\"\(s)\"", into: &o) }
        family("sutra_fsync_latency_seconds", "histogram", "Duration of each group-commit WAL write + fdatasync.")
        m.fsyncLatency.render("sutra_fsync_latency_seconds", labels: "node=\"\(id)\"", into: &o)
        nodeWide("sutra_wal_writes_total", "counter", "Group-commit WAL writes (one fdatasync each).", m.walWrites)
        nodeWide("sutra_wal_write_median_seconds", "gauge", "Median of this node's last 9 WAL write + fdatasync times (slow-disk detection).", (node.ownWALWriteMs ?? 0) / 1000)
        nodeWide("sutra_disk_free_bytes", "gauge", "Bytes free for this node on its data directory's file system (measured about once a second).", m.diskFreeBytes)
        nodeWide("sutra_disk_min_free_bytes", "gauge", "The free-space floor (--min-free-disk-bytes): below it client writes are refused (0: no floor).", config.minFreeDiskBytes)
        nodeWide("sutra_disk_full", "gauge", "1 while client writes are refused for a full disk (below the floor, or a WAL write found no space).", node.diskLow || node.stalledWrite != nil ? 1 : 0)
        nodeWide("sutra_wal_write_stalled", "gauge", "1 while a WAL write waits for space (retried every second; nothing depending on it is acknowledged).", node.stalledWrite != nil ? 1 : 0)
        nodeWide("sutra_wal_write_stalls_total", "counter", "WAL write attempts that found no space (each is retried, unchanged).", m.walWriteStalls)
        nodeWide("sutra_writes_refused_disk_full_total", "counter", "Client writes refused (DISK_FULL, HTTP 507) because the disk is full.", m.writesRefusedDiskFull)
        nodeWide("sutra_slow_disk_transfers_total", "counter", "Shard leaderships handed away because this node's disk was much slower than a peer's.", m.slowDiskTransfers)
        nodeWide("sutra_transfers_refused_while_stopping_total", "counter", "Shard leaderships a peer tried to hand to this node while it was shutting down (refused).", m.transfersRefusedWhileStopping)
        nodeWide("sutra_wal_written_bytes_total", "counter", "Bytes appended to the WAL.", m.walBytes)
        nodeWide("sutra_log_size_bytes", "gauge", "Bytes in the WAL's segment files.", engine.totalBytes)
        perShard("sutra_log_entries", "gauge", "Entries held in each shard's log (after compaction).") { $0.log.lastIndex() - $0.log.compactIndex }
        nodeWide("sutra_snapshots_total", "counter", "Shard snapshots saved by this node (automatic and flush).", m.snapshots)
        nodeWide("sutra_flushes_total", "counter", "Explicit flushes (POST /v1/flush, sutra flush) completed on this node.", m.flushes)
        perShard("sutra_snapshots_installed_total", "counter", "Snapshots received from the leader and installed, per shard.") { $0.installedSnapshots }
        nodeWide("sutra_cluster_map_version", "gauge", "Version of the cluster map this node applied (changes of the meta group's state so far).", node.clusterMap?.version ?? 0)
        nodeWide("sutra_meta_group_leader", "gauge", "The node this node knows as the meta group's leader (0: none).", node.meta.raft.leader)
        nodeWide("sutra_meta_group_term", "gauge", "Raft term of this node's meta-group replica.", node.meta.raft.term)
        nodeWide("sutra_cluster_map_changes_refused_total", "counter", "Cluster-map changes applied here that the map refused (the same on every replica).", node.meta.refusedChanges)
        nodeWide("sutra_membership_changes_total", "counter", "Raft membership changes this node proposed as a group's leader to follow the cluster map (replica moves).", m.membershipChanges)
        nodeWide("sutra_meta_log_size_bytes", "gauge", "Bytes in the cluster map's log (the meta group's, in <data>/meta).", metaEngine.totalBytes)
        perShard("sutra_term", "gauge", "Raft term of each shard replica.") { $0.raft.term }
        perShard("sutra_is_leader", "gauge", "1 if this node leads the shard.") { $0.isLeader ? 1 : 0 }
        perShard("sutra_leader_changes_total", "counter", "Leader or role changes seen by each shard replica.") { $0.leaderChanges }
        perShard("sutra_commit_index", "gauge", "Commit index of each shard replica.") { $0.raft.commitIndex }
        perShard("sutra_applied_index", "gauge", "Applied index of each shard replica.") { $0.appliedIndex }
        family("sutra_replication_lag_entries", "gauge", "Leader only: entries each follower is behind the leader's log.")
        for s in node.clusterStatus().shards {
            for rep in s.replicas where rep.node != id {
                o += "sutra_replication_lag_entries{node=\"\(id)\",shard=\"\(s.shard)\",follower=\"\(rep.node)\"} \(rep.lag)\n"
            }
        }
        family("sutra_peer_connected", "gauge", "1 if the link to the peer node is up.")
        for p in node.config.peers.keys.sorted() where p != id {
            o += "sutra_peer_connected{node=\"\(id)\",peer=\"\(p)\"} \(transport.isConnected(p) ? 1 : 0)\n"
        }
        nodeWide("sutra_peer_insecure", "gauge", "1 if peer links run unauthenticated plaintext (--insecure-peers).", transport.security.mode == .off ? 1 : 0)
        family("sutra_peer_link_tls", "gauge", "1 if the established link to the peer is mutual TLS, 0 if it is plaintext or down.")
        for p in node.config.peers.keys.sorted() where p != id {
            o += "sutra_peer_link_tls{node=\"\(id)\",peer=\"\(p)\"} \(transport.isTLS(p) ? 1 : 0)\n"
        }
        let t = node.transactionStats()
        nodeWide("sutra_txn_pending", "gauge", "Transaction records awaiting a decision on shards this node leads.", t.pending)
        nodeWide("sutra_txn_intents", "gauge", "Transaction intents (prepared parts) held on shards this node leads.", t.intents)
        nodeWide("sutra_txn_committed_total", "counter", "Cross-shard transactions this node decided to commit.", t.committed)
        nodeWide("sutra_txn_aborted_total", "counter", "Cross-shard transactions this node decided (or found decided) to abort.", t.aborted)
        nodeWide("sutra_txn_recovered_total", "counter", "Transactions finished by recovery: records adopted from a previous leader, intents resolved after their timeout.", t.recovered)
        nodeWide("sutra_txn_oldest_pending_seconds", "gauge", "Age of the oldest transaction or intent in flight on this node.", Double(t.oldestPendingMs) / 1000)
        nodeWide("sutra_cross_shard_associations_total", "counter", "Associations between concepts on different shards received by this node.", m.crossShardAssociations)
        family("sutra_vector_searches_total", "counter", "Vector searches answered by this node, by method: exact (a scan: small index, exact: true, or a filter passing few), graph (HNSW), filtered_graph (HNSW walking every vector, holding only those the filter passes).")
        for method in SearchMethod.allCases { o += "sutra_vector_searches_total{node=\"\(id)\",method=\"\(method.rawValue)\"} \(m.vectorSearches[method] ?? 0)\n" }
        if let e = embedder {
            nodeWide("sutra_embedding_calls_total", "counter", "Calls made to the embedding service (--embedding-service).", e.calls)
            nodeWide("sutra_embedding_texts_total", "counter", "Texts embedded by the embedding service.", e.textsEmbedded)
            nodeWide("sutra_embedding_failures_total", "counter", "Calls to the embedding service that failed (down, slow, a wrong answer): their requests got 503.", e.failures)
            nodeWide("sutra_embedding_call_seconds_total", "counter", "Seconds spent in calls to the embedding service.", e.callSeconds)
        }
        nodeWide("sutra_client_requests_forwarded_total", "counter", "Client requests for shards this node does not lead, forwarded to the leader's node and answered here.", m.clientRequestsForwarded)
        nodeWide("sutra_remote_reads_total", "counter", "Reads (or parts of paths and searches) of shards this node holds no replica of, asked of a node that holds them.", m.remoteReads)
        nodeWide("sutra_remote_reads_served_total", "counter", "Reads of shards held here, served for nodes that hold no replica of them.", m.remoteReadsServed)
        nodeWide("sutra_snapshot_streams_started_total", "counter", "Snapshots streamed to a peer in chunks (bigger than --snapshot-chunk-bytes).", m.snapshotStreamsStarted)
        nodeWide("sutra_snapshot_streams_sent_total", "counter", "Streamed snapshots the peer acknowledged whole.", m.snapshotStreamsSent)
        nodeWide("sutra_snapshot_streams_failed_total", "counter", "Streamed snapshots abandoned (link down, no progress for 500 ticks); Raft sends them again, and the peer resumes where it stopped.", m.snapshotStreamsFailed)
        nodeWide("sutra_snapshot_streams_received_total", "counter", "Streamed snapshots received whole from a peer.", m.snapshotStreamsReceived)
        nodeWide("sutra_snapshot_stream_bytes_sent_total", "counter", "Snapshot chunk bytes sent to peers.", m.snapshotBytesStreamedOut)
        nodeWide("sutra_snapshot_stream_bytes_received_total", "counter", "Snapshot chunk bytes received from peers.", m.snapshotBytesStreamedIn)
        nodeWide("sutra_leader_wait_retries_total", "counter", "Requests tried again because their shard's leadership was in flux (an election, a handoff, a leader that just stepped down): a 503 the client did not see.", m.leaderWaitRetries)
        nodeWide("sutra_backups_started_total", "counter", "Online backups begun through this node.", m.backupsStarted)
        nodeWide("sutra_backups_taken_total", "counter", "Online backups whose images this node took (consistent: no cross-shard transaction half in them).", m.backupsTaken)
        nodeWide("sutra_backup_held_transactions_total", "counter", "Cross-shard writes this node held back while a backup fence was raised on their record shard.", m.heldForBackup)
        nodeWide("sutra_backup_fences_expired_total", "counter", "Backup fences this node lifted as leader because their backup never did (it ended or died mid-way).", m.fencesExpired)
        family("sutra_txn_latency_seconds", "histogram", "Time from starting a cross-shard transaction to answering its client.")
        m.txnLatency.render("sutra_txn_latency_seconds", labels: "node=\"\(id)\"", into: &o)
        family("sutra_peer_rejected_messages_total", "counter", "Raft messages from peers refused before they touched a shard (undecodable entries or snapshots, terms or indexes out of bounds, malformed or misaddressed), by reason.")
        for (reason, n) in m.peerRejectedMessages.sorted(by: { $0.key < $1.key }) {
            o += "sutra_peer_rejected_messages_total{node=\"\(id)\",reason=\"\(reason)\"} \(n)\n"
        }
        nodeWide("sutra_peer_oversized_messages_total", "counter", "Raft messages to peers not sent because one alone exceeds --peer-max-frame-bytes (a shard snapshot bigger than the limit).", m.peerOversizedMessages)
        family("sutra_peer_refused_connections_total", "counter", "Inbound peer connections closed before an accepted hello: cap (too many already waiting for theirs) or timeout (none within 5 s).")
        o += "sutra_peer_refused_connections_total{node=\"\(id)\",reason=\"cap\"} \(transport.refusedInboundAtCap)\n"
        o += "sutra_peer_refused_connections_total{node=\"\(id)\",reason=\"timeout\"} \(transport.timedOutInbound)\n"
        nodeWide("sutra_peer_dropped_frames_total", "counter", "Frames to peers dropped because the link was down or backed up.", transport.droppedFrames)
        nodeWide("sutra_peer_unmatched_forward_replies_total", "counter", "Forward replies from peers that answered no request of this process (a previous process's, or one that timed out): dropped.", node.unmatchedForwardReplies)
        return o
    }
}

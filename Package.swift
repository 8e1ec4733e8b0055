// swift-tools-version:6.2
// Sutra: a sharded, Raft-replicated knowledge store. See docs/ARCHITECTURE.md for the module map.
import PackageDescription
import Foundation

let package = Package(
    name: "Sutra",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Raft", targets: ["Raft"]),
        .library(name: "WAL", targets: ["WAL"]),
        .library(name: "UV", targets: ["UV"]),
        .library(name: "SutraClient", targets: ["SutraClient"]),
        .executable(name: "sutra-sim", targets: ["SimRunner"]),
        .executable(name: "sutra-bench", targets: ["Bench"]),
        .executable(name: "sutra-node", targets: ["NodeMain"]),
        .executable(name: "sutra", targets: ["CLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // libuv from Debian's libuv1-dev, and the safe Swift layer over it.
        .systemLibrary(name: "CUV", path: "Sources/CUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        .target(name: "UV", dependencies: ["CUV"], path: "Sources/UV"),

        // http_parser from Debian's libhttp-parser-dev (no pkg-config file), and the pure HTTP/1.1 layer over it:
        // request parsing with limits, response serialization. No sockets.
        .systemLibrary(name: "CHTTPParser", path: "Sources/CHTTPParser", providers: [.apt(["libhttp-parser-dev"])]),
        .target(name: "HTTP", dependencies: ["CHTTPParser", "TLS"], path: "Sources/HTTP"),

        // OpenSSL's libcrypto (Debian libssl-dev) for client tokens: SHA-256, random bytes, constant-time compare.
        .systemLibrary(name: "CLibCrypto", path: "Sources/CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // Client authentication, pure apart from those three calls: roles, the tokens file, bearer parsing, the
        // access decision, the refusal-log rate limit. The node and the CLI use it.
        .target(name: "Auth", dependencies: ["CLibCrypto", "Codec"], path: "Sources/Auth"),
        // OpenSSL 3 (Debian libssl-dev, pkg-config `openssl`: -lssl -lcrypto) behind a thin C layer (many of its
        // calls are macros), and the pure TLS layer over memory BIOs: contexts, sessions, certificates. No libuv.
        .target(name: "CTLS", path: "Sources/CTLS", cSettings: [.define("OPENSSL_API_COMPAT", to: "30000")],
                linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        .target(name: "TLS", dependencies: ["CTLS"], path: "Sources/TLS"),
        // A TLSSession driven over a libuv TCP connection (handshake timeout, events), for peer and client ports.
        .target(name: "TLSTransport", dependencies: ["TLS", "UV", "CUV"], path: "Sources/TLSTransport"),
        // A client connection's bytes, plaintext or TLS (a TLSSession pumped on the loop) over a libuv TCP
        // connection: what the node's client front ends and the SDK read and write through.
        .target(name: "SecureStream", dependencies: ["UV", "CUV", "TLS", "TLSTransport"], path: "Sources/SecureStream"),

        // CRC32C (Castagnoli) with the SSE4.2 instruction where the CPU has it; used to frame WAL records.
        .target(name: "CCRC32C", path: "Sources/CCRC32C", cSettings: [.define("NDEBUG")]),

        // Little-endian byte reader/writer and CRC32C, shared by the WAL, shard commands and shard snapshots.
        .target(name: "Codec", dependencies: ["CCRC32C"], path: "Sources/Codec"),

        // The pure, deterministic consensus core: no clock, sockets or files.
        .target(name: "Raft", path: "Sources/Raft"),

        // Durable log storage (the WAL): one shared, CRC-framed log per node holding every shard's Raft log.
        .target(name: "WAL", dependencies: [
            "Raft", "Codec", "CCRC32C", .product(name: "Logging", package: "swift-log"),
        ], path: "Sources/WAL"),

        // hnswlib (Debian libhnswlib-dev, header-only C++) behind a C API, and its Swift wrapper.
        // hnswlib's distance kernels use AVX2/FMA (measured 1.2–1.4× faster searches on 768-d than SSE); chnsw.cpp
        // sets that target for itself (no -mavx2 unsafe flags: SwiftPM refuses them in a package that others depend
        // on by version, and the SDK must be one). Needs an x86-64-v3 CPU (Haswell, 2013, or newer) for the server,
        // which docs/OPERATIONS.md states as the requirement; the SDK never builds this target.
        .target(name: "CHNSW", path: "Sources/CHNSW", cxxSettings: [.define("NDEBUG")]),
        .target(name: "VectorIndex", dependencies: ["CHNSW"], path: "Sources/VectorIndex"),

        // The model both the server and the SDK speak — `ConceptID` and the shard function (part of the on-disk
        // contract) — as a leaf: no dependency, so an app depending on the SDK builds no server code.
        .target(name: "SutraModel", path: "Sources/SutraModel"),

        // One shard replica's state machine: concepts, associations, per-client de-duplication (pure).
        .target(name: "Shard", dependencies: ["SutraModel", "Codec", "Raft", "WAL", "VectorIndex", "CLibCrypto"], path: "Sources/Shard"),

        // The node's turn logic as pure code (no libuv, sockets, files or clock): shard replicas, group commit,
        // forwards, read waiters, placement, the 2PC host. The production driver and the cluster simulation run it.
        .target(name: "NodeCore", dependencies: [
            "Raft", "WAL", "Shard", "Txn2PC", "Codec", "ClusterMap", .product(name: "Logging", package: "swift-log"),
        ], path: "Sources/NodeCore"),

        // The node process: the libuv driver around NodeCore (loop, WAL writes on the thread pool, timers, signals),
        // the peer transport and the client front ends.
        .target(name: "Node", dependencies: [
            "NodeCore", "ClusterMap", "Raft", "WAL", "Shard", "Txn2PC", "UV", "Codec", "HTTP", "ClientProto", "Auth", "TLS", "TLSTransport", "SecureStream", "Release",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/Node"),
        .executableTarget(name: "NodeMain", dependencies: ["Node"], path: "Sources/NodeMain"),

        // Online backup files and restore (issue 14): the manifest, the verifying reader, and the writer of a new
        // cluster's data directories from a backup.
        .target(name: "Backup", dependencies: ["Node", "Shard", "WAL", "Raft", "Codec"], path: "Sources/Backup"),

        // The `sutra` command line: local clusters, status, data commands, the load generator.
        .executableTarget(name: "CLI", dependencies: [
            "HTTP", "SutraClient", "UV", "ChaosRunner", "ChaosLab", "Raft", "TLS", "Auth", "Release", "Backup", "Shard", "Codec", "NodeCore", "VectorIndex",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/CLI"),

        // The chaos runner's fault-injection layer (issue 5): network namespaces and routes for partitions,
        // sutra-node processes killed, paused and restarted by pid, seeded fault schedules.
        .target(name: "ChaosLab", dependencies: ["HTTP", "Raft", "UV", "TLS"], path: "Sources/ChaosLab"),

        // The binary client protocol: Swift code generated from proto/sutra/v1/client.proto (scripts/gen-proto.sh,
        // committed; no build plugin) and the length-prefixed framing.
        .target(name: "ClientProto", dependencies: [
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ], path: "Sources/ClientProto"),

        // The client SDK (docs/SDK.md): async/await over one private libuv loop thread; routing by shard,
        // leader hints, retries with backoff, de-duplicated writes.
        .target(name: "SutraClient", dependencies: [
            "ClientProto", "UV", "SutraModel", "TLS", "SecureStream", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ], path: "Sources/SutraClient"),

        // Deterministic simulation of Raft clusters: seeded network, crashes, partitions, invariant checks.
        .target(name: "Txn2PC", dependencies: ["Raft", "Shard"], path: "Sources/Txn2PC"),
        // The cluster map (nodes, replica sets, moves) and its placement rules: pure, for the meta group and the SDK.
        .target(name: "ClusterMap", dependencies: ["Codec"], path: "Sources/ClusterMap"),
        // The release number every binary prints with --version (CHANGELOG.md lists the releases).
        .target(name: "Release", path: "Sources/Release"),
        .target(name: "RaftSim", dependencies: [
            "Raft", "Shard", "Txn2PC", "WAL", "NodeCore", "ChaosCheck", "ClusterMap", .product(name: "Logging", package: "swift-log"),
        ], path: "Sources/RaftSim"),
        .executableTarget(name: "SimRunner", dependencies: [
            "RaftSim", "Release", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/SimRunner"),

        // Benchmarks that print figures (release build): `swift run -c release sutra-bench --help`.
        .executableTarget(name: "Bench", dependencies: [
            "Raft", "RaftSim", "WAL", "VectorIndex", "TLS", "TLSTransport", "UV", "Release",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/Bench"),

        // The chaos runner's checkers (issue 5): the JSON-lines history, a per-key linearizability search with a time
        // limit, lost-write and never-written-read checks, the machine-readable report. Pure; Foundation only.
        .target(name: "ChaosCheck", path: "Sources/ChaosCheck"),
        .target(name: "ChaosRunner", dependencies: ["ChaosLab", "ChaosCheck", "SutraClient", "UV"], path: "Sources/ChaosRunner"),

        .testTarget(name: "RaftTests", dependencies: ["Raft"], path: "Tests/Unit/RaftTests"),
        .testTarget(name: "WALTests", dependencies: ["WAL", "Raft", "Codec", "CCRC32C"], path: "Tests/Unit/WALTests"),
        .testTarget(name: "TLSTests", dependencies: ["TLS"], path: "Tests/Unit/TLSTests"),
        .testTarget(name: "UVTests", dependencies: ["UV"], path: "Tests/Unit/UVTests"),
        .testTarget(name: "AuthTests", dependencies: ["Auth"], path: "Tests/Unit/AuthTests"),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP"], path: "Tests/Unit/HTTPTests"),
        .testTarget(name: "VectorIndexTests", dependencies: ["VectorIndex"], path: "Tests/Unit/VectorIndexTests"),
        .testTarget(name: "ShardTests", dependencies: ["Shard"], path: "Tests/Unit/ShardTests"),
        .testTarget(name: "BackupTests", dependencies: ["Backup", "Node", "Shard", "WAL", "Raft", "Codec"], path: "Tests/Unit/BackupTests"),
        .testTarget(name: "ClusterMapTests", dependencies: ["ClusterMap"], path: "Tests/Unit/ClusterMapTests"),
        .testTarget(name: "ClientProtoTests", dependencies: [
            "ClientProto", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ], path: "Tests/Unit/ClientProtoTests"),
        .testTarget(name: "NodeTests", dependencies: ["Node", "NodeCore", "ClusterMap", "Raft", "Shard", .product(name: "Logging", package: "swift-log")], path: "Tests/Unit/NodeTests"),
        .testTarget(name: "ClusterTests", dependencies: ["Backup", "HTTP", "Shard", "WAL", "SutraClient", "UV", "NodeCore", "Raft", "Auth", "TLS", "Release"], path: "Tests/Cluster/ClusterTests"),
        .testTarget(name: "ChaosTests", dependencies: ["ChaosLab", "ChaosRunner", "ChaosCheck", "SutraClient", "Raft", "UV"], path: "Tests/Chaos", exclude: ["README.md"]),
        .testTarget(name: "SutraClientTests", dependencies: [
            "SutraClient", "ClientProto", "UV", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ], path: "Tests/Unit/SutraClientTests"),
        .testTarget(name: "ChaosCheckTests", dependencies: ["ChaosCheck"], path: "Tests/Unit/ChaosCheckTests"),
        .testTarget(name: "SimTests", dependencies: ["RaftSim", "Raft"], path: "Tests/Unit/SimTests"),
    ],
    swiftLanguageModes: [.v6],
    cxxLanguageStandard: .cxx17
)

// Fuzzing (libFuzzer) of every decoder fed by the network or the disk: declared only when SUTRA_FUZZ is set, which
// `scripts/fuzz.sh` does for its own build directory (.build-fuzz) with `-sanitize=fuzzer,address` on every Swift
// module, so ordinary builds and test runs never see these targets (each defines libFuzzer's entry point).
if ProcessInfo.processInfo.environment["SUTRA_FUZZ"] != nil {
    package.targets.append(.target(name: "CFuzzer", path: "Sources/Fuzz/CFuzzer"))
    package.targets.append(.target(name: "FuzzSupport", dependencies: ["CFuzzer"], path: "Sources/Fuzz/FuzzSupport"))
    let fuzzers: [(String, [Target.Dependency])] = [
        ("FuzzPeerWire", ["NodeCore", "Codec"]),
        ("FuzzClientFrame", ["ClientProto", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        ("FuzzHTTPRequest", ["HTTP"]),
        ("FuzzWALSegment", ["WAL", "Codec", "Raft"]),
        ("FuzzShardSnapshot", ["Shard", "Codec"]),
        ("FuzzShardCommand", ["Shard"]),
    ]
    for (name, deps) in fuzzers {
        package.targets.append(.executableTarget(name: name, dependencies: ["FuzzSupport"] + deps, path: "Sources/Fuzz/\(name)"))
        package.products.append(.executable(name: name, targets: [name]))
    }
}

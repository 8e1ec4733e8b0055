import ArgumentParser
import Release

/// `sutra-bench`: benchmarks that print figures. Build in release: `swift run -c release sutra-bench <name>`.
struct SutraBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sutra-bench",
        abstract: "Sutra benchmarks (run a release build).",
        version: SutraRelease.version,
        subcommands: [RaftBench.self, WALBench.self, VectorBench.self, TLSBench.self])
}

SutraBench.main()

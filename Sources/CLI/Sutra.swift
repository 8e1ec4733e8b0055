// sutra: the operator and developer command line (local clusters, status, data commands, load generator).
import ArgumentParser
import Release

@main
struct Sutra: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sutra",
        abstract: "Operate a Sutra cluster: start a local one, inspect it, read and write data, load-test it.",
        version: SutraRelease.version,
        subcommands: [ClusterCommand.self, NodeOpsCommand.self, CertsCommand.self, TokensCommand.self, StatusCommand.self, RebalanceCommand.self, MoveReplicaCommand.self, DigestCommand.self, BackupCommand.self, RestoreCommand.self, PutCommand.self, PatchCommand.self, GetCommand.self, DeleteCommand.self, AssociateCommand.self, DissociateCommand.self,
                      NeighborsCommand.self, PathCommand.self, SearchCommand.self, FlushCommand.self, CompactLogCommand.self,
                      BenchCommand.self, FailoverBenchCommand.self, VectorBenchCommand.self, TextBenchCommand.self, TxnBenchCommand.self, TxnRecoveryBenchCommand.self, ChaosCommand.self])
}

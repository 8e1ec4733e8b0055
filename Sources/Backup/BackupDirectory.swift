import Foundation
import Node

/// The directories backup and restore write into: only new or empty ones (a backup or a restore never mixes
/// with other data), and every file in them written durably (`DurableFile`).
public enum BackupDirectory {
    /// Why `dir` may not be written into (nil: it does not exist or is empty).
    public static func refusal(_ dir: String) -> BackupError? {
        guard FileManager.default.fileExists(atPath: dir) else { return nil }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? ["?"]
        if entries.isEmpty { return nil }
        return BackupError(file: dir, "exists and is not empty (\(entries.count) entries): only a new or empty directory is written into")
    }

    /// Writes `bytes` as `dir/name`: whole or not at all after a crash.
    public static func write(_ bytes: [UInt8], dir: String, name: String) throws(BackupError) {
        do { try DurableFile.write(bytes, to: dir + "/" + name) } catch { throw BackupError(file: dir + "/" + name, error.description) }
    }
}

import CCRC32C

/// CRC32C (Castagnoli), the checksum of every WAL frame and snapshot file. Hardware-accelerated on x86-64.
public enum CRC32C {
    /// The CRC of `bytes`, continuing from `crc` (0 to start).
    @inlinable public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        sutra_crc32c_extend(crc, bytes.baseAddress, bytes.count)
    }

    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }
}

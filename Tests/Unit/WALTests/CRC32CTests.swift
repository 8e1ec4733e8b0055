import Codec
import CCRC32C
@testable import WAL
import XCTest

final class CRC32CTests: XCTestCase {
    func testKnownVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum([]), 0)
    }

    func testHardwareAndSoftwarePathsAgreeAndExtend() {
        var rng = SystemRandomNumberGenerator()
        for len in [0, 1, 7, 8, 9, 15, 16, 63, 64, 100, 1000, 4097] {
            let bytes = (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let hw = bytes.withUnsafeBytes { sutra_crc32c_extend(0, $0.baseAddress, $0.count) }
            let sw = bytes.withUnsafeBytes { sutra_crc32c_extend_sw(0, $0.baseAddress, $0.count) }
            XCTAssertEqual(hw, sw, "length \(len)")
            // Extending over a split equals the checksum of the whole.
            let k = len / 3
            let first = CRC32C.checksum(Array(bytes[..<k]))
            XCTAssertEqual(CRC32C.checksum(Array(bytes[k...]), continuing: first), hw, "split at \(k) of \(len)")
        }
    }
}

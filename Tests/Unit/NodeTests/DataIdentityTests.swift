import Node
import XCTest

/// The data directory's identity record: exact round trip, every truncation and every bit flip refused with an
/// offset, bounded input, and one line naming both values for each disagreement.
final class DataIdentityTests: XCTestCase {
    let id = DataIdentity(clusterID: "prod-eu", nodeID: 3, shards: 8, dimension: 768)

    func testRoundTrip() {
        XCTAssertEqual(try DataIdentity.decode(id.encode()).get(), id)
    }

    func testEveryTruncationAndEveryBitFlipIsRefused() {
        let bytes = id.encode()
        for n in 0..<bytes.count {
            guard case .failure(let e) = DataIdentity.decode(Array(bytes[0..<n])) else { return XCTFail("truncated to \(n) accepted") }
            XCTAssertLessThanOrEqual(e.offset, bytes.count)
        }
        for i in 0..<bytes.count {
            for bit in 0..<8 {
                var b = bytes
                b[i] ^= 1 << bit
                if case .success(let got) = DataIdentity.decode(b) { XCTFail("flip of bit \(bit) at \(i) accepted: \(got)") }
            }
        }
        guard case .failure(let trailing) = DataIdentity.decode(bytes + [0]) else { return XCTFail("trailing byte accepted") }
        XCTAssertTrue(trailing.reason.contains("unexpected bytes"), trailing.reason)
        guard case .failure(let big) = DataIdentity.decode([UInt8](repeating: 0x41, count: 1 << 20)) else { return XCTFail("1 MiB accepted") }
        XCTAssertTrue(big.reason.contains("at most"), big.reason)
    }

    func testEachDisagreementIsOneLineNamingBothValues() {
        func line(_ change: (inout DataIdentity) -> Void) -> String? {
            var wanted = id
            change(&wanted)
            return id.refusal(against: wanted, directory: "/x")
        }
        XCTAssertNil(line { _ in })
        XCTAssertEqual(line { $0.shards = 4 }, "--shards 4 but data directory /x was created with 8 shards")
        XCTAssertEqual(line { $0.dimension = 16 }, "--dimension 16 but data directory /x was created with dimension 768")
        XCTAssertEqual(line { $0.clusterID = "sutra" }, "--cluster-id 'sutra' but data directory /x was created for cluster 'prod-eu'")
        XCTAssertEqual(line { $0.nodeID = 1 }, "--node-id 1 but data directory /x belongs to node 3")
        XCTAssertEqual(line { $0.walFormat = 0 }, "data directory /x holds WAL format 1, newer than this build's 0 (a newer release wrote it)")
        XCTAssertNil(line { $0.snapshotFormat += 1 }, "older recorded formats are read (and the record updated)")
    }
}

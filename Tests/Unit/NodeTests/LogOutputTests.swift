import Foundation
import Logging
@testable import Node
import XCTest

/// The node's log lines: one line per event whatever a message holds, syslog priorities for journald, UTC
/// timestamps for files, and a log file that is reopened (logrotate) without losing a line.
final class LogOutputTests: XCTestCase {
    private func temporaryPath() -> String {
        NSTemporaryDirectory() + "sutra-log-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
    }

    func testAMessageWithNewlinesStaysOneLine() throws {
        let out = try LogOutput(format: .text, path: temporaryPath(), environment: [:])
        defer { try? FileManager.default.removeItem(atPath: out.path!) }
        // A peer or client chose this text: it must not forge a second log line.
        let line = out.line(level: .warning, label: "sutra.node1", message: "refused hello from 'x\n2026-12-03T00:00:00.000Z critical sutra.node1: forged'",
                            metadata: ["peer": "a\tb\\c"], now: timespec(tv_sec: 0, tv_nsec: 5_000_000))
        XCTAssertFalse(line.contains("\n"))
        XCTAssertEqual(line, "1970-01-01T00:00:00.005Z warning sutra.node1: refused hello from 'x\\n2026-12-03T00:00:00.000Z critical sutra.node1: forged' peer=a\\tb\\\\c")
        XCTAssertEqual(LogOutput.escaped("bell\u{07}del\u{7F}"), "bell\\x07del\\x7f")
    }

    func testJournaldLinesCarryTheSyslogPriorityAndNoTimestamp() throws {
        let out = try LogOutput(format: .journald, path: nil, environment: [:])
        let now = timespec(tv_sec: 1_700_000_000, tv_nsec: 0)
        XCTAssertEqual(out.line(level: .error, label: "sutra.node2", message: "WAL write found no space", metadata: [:], now: now),
                       "<3>sutra.node2: WAL write found no space")
        XCTAssertEqual(Logger.Level.allCases.map(LogOutput.priority), [7, 7, 6, 5, 4, 3, 2])
    }

    func testAutoIsJournaldOnlyWhenStderrIsTheJournal() throws {
        XCTAssertEqual(try LogOutput(format: .auto, path: nil, environment: [:]).format, .text)
        // JOURNAL_STREAM naming another stream (or garbage) is not stderr.
        XCTAssertEqual(try LogOutput(format: .auto, path: nil, environment: ["JOURNAL_STREAM": "1:2"]).format, .text)
        XCTAssertEqual(try LogOutput(format: .auto, path: nil, environment: ["JOURNAL_STREAM": "x"]).format, .text)
        var st = stat()
        XCTAssertEqual(fstat(STDERR_FILENO, &st), 0)
        let me = "\(st.st_dev):\(st.st_ino)"
        XCTAssertEqual(try LogOutput(format: .auto, path: nil, environment: ["JOURNAL_STREAM": me]).format, .journald)
        // A log file is text even under systemd.
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try LogOutput(format: .auto, path: path, environment: ["JOURNAL_STREAM": me]).format, .text)
    }

    /// logrotate moves the file away, then sends SIGHUP: lines before go to the rotated file, lines after to
    /// a new file at the path (0600), none lost.
    func testReopenAfterRotationLosesNoLine() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".1") }
        let out = try LogOutput(format: .text, path: path, environment: [:])
        out.write(level: .info, label: "t", message: "before", metadata: [:])
        XCTAssertEqual(rename(path, path + ".1"), 0)
        out.write(level: .info, label: "t", message: "between", metadata: [:])   // still the open (rotated) file
        XCTAssertNil(out.reopen())
        out.write(level: .info, label: "t", message: "after", metadata: [:])
        let rotated = try String(contentsOfFile: path + ".1", encoding: .utf8)
        let current = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(rotated.split(separator: "\n").map { $0.hasSuffix("t: before") || $0.hasSuffix("t: between") }, [true, true])
        XCTAssertEqual(current.split(separator: "\n").count, 1)
        XCTAssertTrue(current.hasSuffix("info t: after\n"), current)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
    }

    func testAnUnwritableLogFileIsRefusedNamingIt() {
        XCTAssertThrowsError(try LogOutput(format: .text, path: "/nonexistent-dir/sutra.log", environment: [:])) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent-dir/sutra.log"), "\(e)")
        }
    }
}

import Foundation
import XCTest

/// The monitoring files in `deploy/` against a real node: every metric the Prometheus alert rules and the
/// Grafana dashboard use is one a running `sutra-node` serves (a renamed metric would silently blind an alert),
/// the dashboard is valid JSON whose every panel has a query, and — when `promtool` is installed — the rules
/// check and their unit tests (`sutra-alerts.test.yml`) pass.
final class ClusterDeployFilesTests: XCTestCase {
    var cluster: LocalTestCluster!

    override func tearDown() {
        cluster?.destroy(keepLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
    }

    private var deploy: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("deploy").path
    }

    /// Metric names (`sutra_…`, `process_…`) in a file's text; histogram series map to their family.
    private func metricNames(in text: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: "\\b(sutra|process)_[a-z_]+")
        var names = Set<String>()
        for m in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            var name = String(text[Range(m.range, in: text)!])
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
            names.insert(name)
        }
        // Words of the annotations that are not metrics.
        names.subtract(["sutra_status"])
        return names
    }

    /// Families a node serves (`# TYPE name kind` lines).
    private func servedFamilies(_ body: String) -> Set<String> {
        Set(body.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("# TYPE ") else { return nil }
            return line.split(separator: " ").dropFirst(2).first.map(String.init)
        })
    }

    func testEveryMetricTheAlertsAndTheDashboardUseIsServed() throws {
        cluster = try LocalTestCluster(nodes: 3, shards: 2)
        try cluster.startAll()
        try cluster.waitReady()
        let metrics = cluster.http(1, "GET", "/metrics")
        XCTAssertEqual(metrics.status, 200)
        let served = servedFamilies(metrics.text)
        XCTAssertTrue(served.contains("sutra_is_leader"), "the node's /metrics has no TYPE lines: \(metrics.text.prefix(300))")

        let alerts = try String(contentsOfFile: deploy + "/prometheus/sutra-alerts.yml", encoding: .utf8)
        let dashboardText = try String(contentsOfFile: deploy + "/grafana/sutra-dashboard.json", encoding: .utf8)
        let usedByAlerts = metricNames(in: alerts), usedByDashboard = metricNames(in: dashboardText)
        XCTAssertGreaterThan(usedByAlerts.count, 10)
        XCTAssertGreaterThan(usedByDashboard.count, 20)
        XCTAssertEqual(usedByAlerts.subtracting(served).sorted(), [], "alert rules use metrics no node serves")
        XCTAssertEqual(usedByDashboard.subtracting(served).sorted(), [], "the dashboard uses metrics no node serves")

        let dashboard = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(dashboardText.utf8)) as? [String: Any])
        let panels = try XCTUnwrap(dashboard["panels"] as? [[String: Any]])
        XCTAssertGreaterThan(panels.count, 15)
        for p in panels {
            let targets = p["targets"] as? [[String: Any]] ?? []
            XCTAssertFalse(targets.isEmpty, "panel \(p["title"] ?? "?") has no query")
            for t in targets { XCTAssertFalse((t["expr"] as? String ?? "").isEmpty, "panel \(p["title"] ?? "?") has an empty query") }
        }
    }

    func testTheAlertRulesPassPromtool() throws {
        let candidates = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        guard let promtool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("promtool is not installed (Debian: apt-get install prometheus): the rule checks did not run")
        }
        for args in [["check", "rules", "sutra-alerts.yml"], ["test", "rules", "sutra-alerts.test.yml"]] {
            let r = try runProgram(promtool, args, directory: deploy + "/prometheus")
            XCTAssertEqual(r.status, 0, "promtool \(args.joined(separator: " ")):\n\(r.output)")
        }
    }
}

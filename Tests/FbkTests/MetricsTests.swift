import Foundation
import Testing
import TestSupport

/// `fbk snapshot --prometheus FILE` (README, "Monitoring a client"): the
/// run's outcome and each mirror's state as node_exporter textfile metrics,
/// and deploy/prometheus's alert rules on them.
@Suite(.hangGuard) struct MetricsTests {
    /// metric line → value, e.g. `fbk_mirror_behind{client="c1",mirror="…"}` → 1.
    func metrics(_ path: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            out[String(line[..<space])] = v
        }
        return out
    }

    @Test func aLaggingMirrorShowsTheSameDayAndTheLastSuccessIsKept() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", sampleBytes(50_000, seed: 1))
        let file = f.dir.file("fbk.prom")
        let run = { try CLI.run(["snapshot", "--config", f.configPath, "--prometheus", file]) }
        #expect(try run().status == 0)
        var m = metrics(file)
        let first = try #require(m["fbk_snapshot_last_success_timestamp_seconds{client=\"c1\"}"])
        #expect(abs(first - Date().timeIntervalSince1970) < 60)
        #expect(m["fbk_snapshot_exit_status{client=\"c1\"}"] == 0)
        #expect(m["fbk_snapshot_files{client=\"c1\"}"] == 1)
        #expect(m["fbk_mirror_behind{client=\"c1\",mirror=\"\(f.mirrors[1].url("c1"))\"}"] == 0, "\(m)")

        // One mirror down: stored (status 4), that mirror behind.
        f.mirrors[1].stop()
        sleep(1)
        try f.dir.write("src/b", sampleBytes(50_000, seed: 2))
        #expect(try run().status == 4)
        m = metrics(file)
        #expect(m["fbk_mirror_behind{client=\"c1\",mirror=\"\(f.mirrors[1].url("c1"))\"}"] == 1, "\(m)")
        #expect(m["fbk_mirror_behind{client=\"c1\",mirror=\"\(f.mirrors[0].url("c1"))\"}"] == 0)
        #expect((m["fbk_mirror_spooled_objects{client=\"c1\",mirror=\"\(f.mirrors[1].url("c1"))\"}"] ?? 0) > 0)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.contains("fbk_mirror_last_error_info{client=\"c1\",mirror=\"\(f.mirrors[1].url("c1"))\",error=\""), "\(text)")
        let second = try #require(m["fbk_snapshot_last_success_timestamp_seconds{client=\"c1\"}"])
        #expect(second >= first)

        // Both down: nothing stored (75); the last success stays the one before.
        f.mirrors[0].stop()
        sleep(1)
        try f.dir.write("src/c", sampleBytes(50_000, seed: 3))
        #expect(try run().status == 75)
        m = metrics(file)
        #expect(m["fbk_snapshot_exit_status{client=\"c1\"}"] == 75)
        #expect(m["fbk_snapshot_last_success_timestamp_seconds{client=\"c1\"}"] == second)
    }

    /// Every metric the shipped alert rules use is one fbk writes.
    @Test func theShippedAlertRulesUseMetricsFbkWrites() throws {
        let rules = try String(contentsOfFile: repositoryRoot + "/deploy/prometheus/fbk-client.rules.yml", encoding: .utf8)
        let expressions = rules.split(separator: "\n").compactMap { line in
            line.range(of: "expr: ").map { String(line[$0.upperBound...]) }
        }
        #expect(expressions.count == 5)
        let f = try SnapshotFixture()
        try f.dir.write("src/a", Array("a\n".utf8))
        let file = f.dir.file("fbk.prom")
        #expect(try CLI.run(["snapshot", "--config", f.configPath, "--prometheus", file]).status == 0)
        let written = Set(metrics(file).keys.map { String($0.prefix { $0 != "{" }) })
        for e in expressions {
            for name in e.split(whereSeparator: { !($0.isLetter || $0 == "_") }).filter({ $0.hasPrefix("fbk_") }) {
                #expect(written.contains(String(name)), "\(name) in \(e)")
            }
        }
    }
}

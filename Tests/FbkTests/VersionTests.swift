import Foundation
import Testing
import TestSupport

/// One version per build: `fbk --version`, the `version` of a --json
/// summary and the User-Agent the mirrors see are the same string, and it
/// begins with the base version in Sources/CLinux/version.h.
@Suite struct VersionTests {
    @Test func theVersionIsTheSameEverywhere() throws {
        let header = try String(contentsOfFile: repositoryRoot + "/Sources/CLinux/version.h", encoding: .utf8)
        let base = try #require(header.split(separator: "\n").first { $0.hasPrefix("#define FBK_BASE_VERSION ") }?
            .split(separator: "\"").dropFirst().first.map(String.init))

        let printed = try CLI.run(["--version"])
        let version = printed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(printed.status == 0)
        #expect(version.hasPrefix(base), "\(version) does not start with \(base)")
        #expect(!version.contains(" ") && !version.isEmpty)

        let f = try SnapshotFixture()
        try f.dir.write("src/file", Array("some bytes\n".utf8))
        let snap = try f.snapshot()
        #expect(snap.status == 0, "\(snap.stderr)")
        #expect(snap.summary["version"] as? String == version)

        // nginx's access log (the combined format) ends each line with the User-Agent.
        let log = try String(contentsOfFile: f.mirrors[0].prefix.file("logs/access.log"), encoding: .utf8)
        let puts = log.split(separator: "\n").filter { $0.contains("\"PUT ") }
        #expect(!puts.isEmpty)
        #expect(puts.allSatisfy { $0.hasSuffix("\"fbk/\(version)\"") }, "\(puts.prefix(3))")
    }
}

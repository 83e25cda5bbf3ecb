import Foundation
import Testing
import TestSupport

/// Command sources (README, "Command sources"): a database dump's standard
/// output backed up as `/.fbk-commands/NAME`, chunked as it arrives; a
/// failing command is left out and named; `--stdin NAME` for one-off streams.
@Suite(.hangGuard) struct CommandSourceTests {
    func restore(_ f: SnapshotFixture, _ target: String) throws -> CLI.Result {
        try CLI.run(["restore", "--from", f.mirrors[0].storageRoot, "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"),
                     "--key", f.keysDirectory + "/private.pem", "latest", "--target", target], environment: ["FBK_PASSPHRASE": f.passphrase])
    }

    @Test func aDatabaseDumpIsBackedUpFromItsOutputAndRestores() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", Array("a file\n".utf8))
        let db = f.dir.file("app.sqlite")
        #expect(try runTool("sqlite3", [db, """
            CREATE TABLE posts(id INTEGER PRIMARY KEY, body TEXT);
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1999)
            INSERT INTO posts(body) SELECT 'post ' || i || ' of the hackerspace channel' FROM n;
            """]).status == 0)
        try f.configure("""
            commands:
              - name: app.sql
                run: "sqlite3 \(db) .dump"
              - name: broken.dump
                run: "echo half a dump; echo the database is locked >&2; exit 2"
            """)
        let r = try f.snapshot()
        #expect(r.status == 3, "a failed command makes the run partial: \(r.status) \(r.stderr)")
        let warnings = (r.summary["warnings"] as? [String] ?? []).joined(separator: "\n")
        #expect(warnings.contains("broken.dump") && warnings.contains("exited 2"), "\(warnings)")
        #expect(r.stderr.contains("the database is locked"), "the command's own message reaches the log")

        let target = f.dir.file("restored")
        let restored = try restore(f, target)
        #expect(restored.status == 0, "\(restored.stderr)")
        let dump = target + "/.fbk-commands/app.sql"
        #expect(!FileManager.default.fileExists(atPath: target + "/.fbk-commands/broken.dump"), "a failed command's output is left out")
        let copy = f.dir.file("copy.sqlite")
        #expect(try runTool("sh", ["-c", "sqlite3 \(copy) < \(dump)"]).status == 0)
        #expect(String(decoding: try runTool("sqlite3", [copy, "SELECT count(*), max(body) FROM posts"]).stdout, as: UTF8.self)
                == "2000|post 999 of the hackerspace channel\n")
        #expect(FileManager.default.contents(atPath: target + f.source + "/a") != nil, "files are backed up beside it")

        // The same dump again is deduplicated like any file.
        try f.configure("")
        let again = try f.snapshot()
        #expect((again.summary["new_bytes"] as? Int ?? .max) < 20_000, "\(again.summary)")
    }

    @Test func standardInputIsBackedUpUnderItsName() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", Array("a\n".utf8))
        let stream = Data(sampleBytes(700_000, seed: 9))
        let r = try CLI.run(["snapshot", "--config", f.configPath, "--stdin", "router.conf", "--json"], stdin: stream)
        #expect(r.status == 0, "\(r.stderr)")
        let target = f.dir.file("restored")
        #expect(try restore(f, target).status == 0)
        #expect(FileManager.default.contents(atPath: target + "/.fbk-commands/router.conf") == stream)
        let bad = try CLI.run(["snapshot", "--config", f.configPath, "--stdin", "../etc/passwd"])
        #expect(bad.status == 64, "\(bad.stderr)")
    }

    @Test func aCommandThatHangsIsStoppedAtItsTimeout() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", Array("a\n".utf8))
        try f.configure("""
            commands:
              - name: stuck.dump
                run: "echo started; sleep 300"
                timeout: 1s
            """)
        let started = Date()
        let r = try f.snapshot()
        #expect(r.status == 3, "\(r.status) \(r.stderr)")
        let warnings = (r.summary["warnings"] as? [String] ?? []).joined(separator: "\n")
        #expect(warnings.contains("stuck.dump") && warnings.contains("time limit"), "\(warnings)")
        #expect(Date().timeIntervalSince(started) < 120)
    }
}

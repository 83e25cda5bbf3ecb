import Foundation
import Testing
import TestSupport

/// Hooks around a snapshot (README, "Hooks"): `before` (a database dump, a
/// service stopped), `after` (always), `on_failure` (a run that did not
/// exit 0), with the run's outcome in their environment and a time limit.
@Suite(.hangGuard) struct HookTests {
    /// KEY=VALUE lines a hook wrote with `env`.
    func environment(_ path: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            out[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return out
    }

    @Test func beforeMakesWhatIsBackedUpAndAfterIsToldTheOutcome() throws {
        let f = try SnapshotFixture()
        let db = f.dir.file("app.sqlite")
        #expect(try runTool("sqlite3", [db, "CREATE TABLE t(x); INSERT INTO t VALUES ('posts of a year');"]).status == 0)
        try f.configure("""
            before:
              - "sqlite3 \(db) .dump > \(f.source)/app.sql"
              - "echo before ran >&2"
            after: "env | grep ^FBK_ > \(f.dir.file("after.env"))"
            on_failure: "touch \(f.dir.file("failure-ran"))"
            """)
        let r = try f.snapshot()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("before ran"), "a hook's output goes to standard error: \(r.stderr)")
        let env = environment(f.dir.file("after.env"))
        #expect(env["FBK_OUTCOME"] == "success" && env["FBK_STATUS"] == "0", "\(env)")
        #expect(env["FBK_SNAPSHOT"] == r.summary["snapshot"] as? String && env["FBK_CLIENT"] == "c1", "\(env)")
        #expect(env["FBK_FILES"] == "1" && env["FBK_MIRRORS_BEHIND"] == "", "\(env)")
        #expect(!FileManager.default.fileExists(atPath: f.dir.file("failure-ran")))

        // The dump restores into a working database.
        let target = f.dir.file("restored")
        let restore = try CLI.run(["restore", "--from", f.mirrors[0].storageRoot, "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"),
                                   "--key", f.keysDirectory + "/private.pem", "latest", "--target", target], environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(restore.status == 0, "\(restore.stderr)")
        let copy = f.dir.file("copy.sqlite")
        #expect(try runTool("sh", ["-c", "sqlite3 \(copy) < \(target + f.source)/app.sql"]).status == 0)
        #expect(String(decoding: try runTool("sqlite3", [copy, "SELECT x FROM t"]).stdout, as: UTF8.self) == "posts of a year\n")
    }

    @Test func aFailingBeforeStopsTheRunButAfterAndOnFailureStillRun() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", Array("a\n".utf8))
        try f.configure("""
            before: "exit 3"
            after: "env | grep ^FBK_ > \(f.dir.file("after.env"))"
            on_failure: "env | grep ^FBK_ > \(f.dir.file("failure.env"))"
            """)
        let r = try f.snapshot()
        #expect(r.status == 6, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("exited 3") && r.stderr.contains("before_failure: continue"), "\(r.stderr)")
        #expect(f.objects(0).isEmpty, "no snapshot taken")
        #expect(environment(f.dir.file("after.env"))["FBK_OUTCOME"] == "failed")
        let failure = environment(f.dir.file("failure.env"))
        #expect(failure["FBK_STATUS"] == "6" && failure["FBK_ERROR"]?.contains("exited 3") == true, "\(failure)")

        // With before_failure: continue the snapshot is taken, and the run ends with a warning (1).
        try f.configure("before_failure: continue")
        let again = try f.snapshot()
        #expect(again.status == 1, "\(again.status) \(again.stderr)")
        #expect(again.summary["snapshot"] as? String != nil)
    }

    @Test func aHookThatHangsIsStoppedAtItsTimeLimit() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", Array("a\n".utf8))
        // The child's child is stopped too: the hook runs in a process group of its own.
        try f.configure("""
            after: "sleep 300 & sleep 300"
            hook_timeout: 1s
            """)
        let started = Date()
        let r = try f.snapshot()
        #expect(r.status == 1, "the snapshot is stored; the hook's failure is a warning: \(r.status) \(r.stderr)")
        #expect(r.stderr.contains("hook_timeout"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) < 120)
        let left = try runTool("pgrep", ["-f", "^sleep 300$"])
        #expect(left.stdout.isEmpty, "no sleep left behind: \(String(decoding: left.stdout, as: UTF8.self))")
    }

    /// A hook inherits standard input, output and error, and nothing else
    /// fbk has open: not the index, the lock, nor a connection to a mirror.
    @Test func aHookInheritsNoDescriptorButTheStandardThree() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", Array("a\n".utf8))
        let listing = f.dir.file("fds")
        try f.configure("""
            before: "ls -l /proc/self/fd/ > \(listing).before"
            after: "ls -l /proc/self/fd/ > \(listing).after"
            """)
        let r = try f.snapshot()
        #expect(r.status == 0, "\(r.stderr)")
        for phase in ["before", "after"] {
            let text = (try? String(contentsOfFile: listing + "." + phase, encoding: .utf8)) ?? ""
            // "lr-x------ 1 root root 64 Dec  7 07:08 3 -> /proc/4242/fd": ls's own fd 3 is the directory it lists.
            let inherited = text.split(separator: "\n").compactMap { line -> String? in
                let words = line.split(separator: " ")
                guard let arrow = words.firstIndex(of: "->"), arrow > 0, let fd = Int(words[arrow - 1]), fd > 2 else { return nil }
                let target = words[(arrow + 1)...].joined(separator: " ")
                return target.hasPrefix("/proc/") && target.hasSuffix("/fd") ? nil : "\(fd) -> \(target)"
            }
            #expect(text.contains(" 0 -> "), "the \(phase) hook ran and listed its descriptors: \(text)")
            #expect(inherited.isEmpty, "the \(phase) hook inherited \(inherited)")
        }
    }

    @Test func badHookFieldsAreConfigurationErrors() throws {
        let f = try SnapshotFixture()
        try f.configure("hook_timeout: soon")
        let r = try f.snapshot()
        #expect(r.status == 64 && r.stderr.contains("hook_timeout"), "\(r.stderr)")
    }
}

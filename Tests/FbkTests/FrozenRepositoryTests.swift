// A repository written by an earlier fbk (Tests/Fixtures/frozen-v1, never
// rewritten): every later fbk must still list, restore, verify, check and
// rebuild from it. It guards the format across refactors of the code that
// reads and writes it.

import Foundation
import Testing
import TestSupport

@Suite struct FrozenRepositoryTests {
    static let fixture = repositoryRoot + "/Tests/Fixtures/frozen-v1"
    static let passphrase = "frozen fixture passphrase"
    static let snapshots = ["20261206T033440Z-178d484cf7d7e2c8", "20261206T033442Z-fab6497d2ab1589a"]

    /// The fixture's storage, copied (so nothing a test does can change it).
    static func storage(_ dir: TemporaryDirectory) throws -> String {
        let root = dir.file("storage")
        try FileManager.default.copyItem(atPath: fixture + "/storage", toPath: root)
        return root
    }

    static func fbk(_ command: String, _ root: String, _ extra: [String]) throws -> CLI.Result {
        try CLI.run([command, "--from", root, "--client", "c1", "--signing-key", fixture + "/signing.pub",
                     "--key", fixture + "/private.pem"] + extra, environment: ["FBK_PASSPHRASE": passphrase])
    }

    @Test func itListsRestoresAndVerifiesAsWritten() throws {
        let dir = try TemporaryDirectory()
        let root = try Self.storage(dir)
        let list = try Self.fbk("snapshots", root, ["--json"])
        #expect(list.status == 0, "\(list.stderr)")
        let rows = try JSONSerialization.jsonObject(with: list.stdoutBytes) as? [[String: Any]] ?? []
        #expect(rows.compactMap { $0["id"] as? String } == Self.snapshots)

        let latest = dir.file("latest")
        let r = try Self.fbk("restore", root, ["latest", "--target", latest])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let manifest = try runTool("python3", [repositoryRoot + "/Tests/Fixtures/manifest.py", latest + "/tmp/frozen/src"])
        #expect(String(decoding: manifest.stdout, as: UTF8.self) == (try String(contentsOfFile: Self.fixture + "/manifest.txt", encoding: .utf8)))

        let first = dir.file("first")
        #expect(try Self.fbk("restore", root, [Self.snapshots[0], "--target", first, "tmp/frozen/src/etc"]).status == 0)
        #expect(try String(contentsOfFile: first + "/tmp/frozen/src/etc/app/config.toml", encoding: .utf8) == "port = 8080\nname = \"frozen\"\n")
        #expect(!FileManager.default.fileExists(atPath: first + "/tmp/frozen/src/etc/added"))

        for id in Self.snapshots { #expect(try Self.fbk("verify", root, [id]).status == 0) }
    }

    @Test func theIndependentReaderReadsItToo() throws {
        let dir = try TemporaryDirectory()
        let root = try Self.storage(dir)
        let target = dir.file("independent")
        let r = try runTool("/usr/bin/python3", [repositoryRoot + "/Tests/Fixtures/independent_reader.py", root, "c1",
                                                 Self.fixture + "/private.pem", Self.passphrase, target])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: target + "/tmp/frozen/src/etc/app/config.toml", encoding: .utf8) == "port = 9090\nname = \"frozen, second\"\n")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target + "/tmp/frozen/src/data/blob.bin")).count == 400_000)
    }

    @Test func itChecksCleanAndRebuildsAnIndex() throws {
        let dir = try TemporaryDirectory()
        let root = try Self.storage(dir)
        let key = try String(contentsOfFile: Self.fixture + "/signing.pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let config = try dir.write("check.conf", Array("clients:\n  - name: c1\n    kind: fbk\n    signing_key: \(key)\n    max_age: 100000d\n".utf8))
        let check = try CLI.run(["check", "--config", config, "--root", root, "--deep", "--state", dir.file("state")])
        #expect(check.status == 0, "\(check.stdout)")

        let secret = try dir.write("secret", [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/secret"))))
        chmod(secret, 0o600)
        let rebuild = try CLI.run(["index", "rebuild", "--from", root, "--mirror-url", "file:///tmp/frozen/m1/c1/", "--client", "c1",
                                   "--secret", secret, "--out", dir.file("index.sqlite"), "--json"])
        #expect(rebuild.status == 0, "\(rebuild.stderr)")
        let summary = try JSONSerialization.jsonObject(with: rebuild.stdoutBytes) as? [String: Any] ?? [:]
        #expect(summary["snapshots"] as? Int == 2 && summary["packs"] as? Int == 2)
    }
}

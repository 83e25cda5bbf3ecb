import Foundation
import Index
import Testing
import TestSupport

/// A full disk under the state directory: the run stops with a message
/// that names the place and the cause, records nothing it did not store,
/// and the next run (with space again) completes. The small filesystem is
/// a tmpfs mounted in a private mount namespace (`unshare -m`), so it
/// vanishes with the run whatever happens.
@Suite(.serialized) struct FullDiskTests {
    /// Runs `fbk snapshot` with a tmpfs of `kibibytes` mounted over
    /// `directory`; `prepare` is shell run after the mount (e.g. to copy the
    /// state in and fill the rest).
    /// - Parameter keep: copy what the run wrote on the small filesystem
    ///   back onto the real directory afterwards, as a disk that filled up
    ///   keeps what was written before (a tmpfs vanishes with the run).
    func snapshotOnSmallFilesystem(_ f: SnapshotFixture, over directory: String, kibibytes: Int,
                                   prepare: String = "", keep: Bool = false) throws -> (status: Int32, stderr: String) {
        let scratch = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: scratch.file("disk"), withIntermediateDirectories: true)
        let script = """
            set -e
            mkdir -p "$1"
            \(keep ? #"mount --bind "$1" "$4""# : "")
            mount -t tmpfs -o size=\(kibibytes)k,mode=0700 fbk-test "$1"
            \(prepare)
            status=0
            "$2" snapshot --config "$3" || status=$?
            \(keep ? #"cp -a "$1"/. "$4"/"# : "")
            exit $status
            """
        let status = try spawnAndWait("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh",
                                                          directory, CLI.binary.path, f.configPath, scratch.file("disk")],
                                      environment: ProcessInfo.processInfo.environment, stdin: nil,
                                      stdout: scratch.file("out"), stderr: scratch.file("err"))
        return (status, String(decoding: FileManager.default.contents(atPath: scratch.file("err")) ?? Data(), as: UTF8.self))
    }

    @Test func aFullSpoolStopsTheRunCleanlyAndTheNextRunCompletes() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/small", Array("first\n".utf8))
        #expect(try f.snapshot().status == 0)
        // 3 MiB that does not compress, on a 512 KiB spool: no pack fits.
        try f.dir.write("src/random", sampleBytes(3 << 20, seed: 9))
        let before = try Index.open(path: f.dir.file("state/index.sqlite")).ledger.snapshotIDs
        let r = try snapshotOnSmallFilesystem(f, over: f.dir.file("state/spool"), kibibytes: 512)
        #expect(r.status == 74, "\(r.stderr)")
        #expect(r.stderr.contains("holding the spool") && r.stderr.contains("bytes are free") && r.stderr.contains("free space there"), "\(r.stderr)")
        #expect(try Index.open(path: f.dir.file("state/index.sqlite")).ledger.snapshotIDs == before, "nothing new is recorded")
        try f.checkInvariants(after: "full spool")
        let again = try f.snapshot()
        #expect(again.status == 0, "\(again.stderr)")
        try f.checkInvariants(after: "rerun with space")
        #expect(try Index.open(path: f.dir.file("state/index.sqlite")).ledger.snapshotIDs.count == before.count + 1)
    }

    @Test func aSpoolFillingUpDuringTheRunStopsItCleanly() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/small", Array("first\n".utf8))
        #expect(try f.snapshot().status == 0)
        // With a mirror down, every pack stays in the spool for it: 16 MiB
        // of packs cannot fit in 7 MiB, which passes the check at the start.
        f.mirrors[1].stop()
        for i in 0..<4 { try f.dir.write("src/random\(i)", sampleBytes(4 << 20, seed: UInt64(20 + i))) }
        let before = try Index.open(path: f.dir.file("state/index.sqlite")).ledger.snapshotIDs
        let r = try snapshotOnSmallFilesystem(f, over: f.dir.file("state/spool"), kibibytes: 7 << 10, keep: true)
        #expect(r.status == 74, "\(r.stderr)")
        #expect(r.stderr.contains("No space left on device") && r.stderr.contains("spool"), "\(r.stderr)")
        #expect(try Index.open(path: f.dir.file("state/index.sqlite")).ledger.snapshotIDs == before, "nothing new is recorded")
        try f.checkInvariants(after: "spool filled during the run")
        try f.mirrors[1].start()
        let again = try f.snapshot()
        #expect(again.status == 0, "\(again.stderr) \(again.summary)")
        try f.checkInvariants(after: "rerun with space")
    }

    @Test func aFullStateDirectoryStopsTheRunWithAClearMessage() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/small", Array("first\n".utf8))
        #expect(try f.snapshot().status == 0)
        try f.dir.write("src/more", sampleBytes(1 << 20, seed: 10))
        // The state, copied onto a filesystem then filled to the last block.
        let state = f.dir.file("state")
        try FileManager.default.copyItem(atPath: state, toPath: f.dir.file("state-copy"))
        let r = try snapshotOnSmallFilesystem(f, over: state, kibibytes: 4096, prepare: """
            cp -a "\(f.dir.file("state-copy"))/." "$1/"
            dd if=/dev/zero of="$1/filler" bs=4096 2>/dev/null || true
            """)
        #expect(r.status != 0 && r.status < 128, "exits with an error, not a signal: \(r.status) \(r.stderr)")
        #expect(r.status == 74 && r.stderr.contains("is full") && r.stderr.contains("free space there"), "\(r.stderr)")
        #expect(!r.stderr.contains("rebuild"), "a full disk is not a damaged index: \(r.stderr)")
        try f.checkInvariants(after: "full state directory")
        let again = try f.snapshot()
        #expect(again.status == 0, "\(again.stderr)")
        try f.checkInvariants(after: "rerun with space")
    }

    /// A restore target that runs out of inodes part way: the files that
    /// could not be created are named as damaged and left out, the exit
    /// status says the restore is incomplete, and every file that was
    /// created holds its data. (Entries are created on a thread of their
    /// own while the plan is walked; this is its failure path.)
    @Test func aTargetOutOfInodesNamesTheFilesLeftOutAndRestoresTheRest() throws {
        let f = try SnapshotFixture()
        for i in 0..<40 { try f.dir.write("src/d\(i % 4)/f\(i)", sampleBytes(3_000 + i, seed: UInt64(i))) }
        #expect(try f.snapshot().status == 0)
        let scratch = try TemporaryDirectory()
        let target = scratch.file("target")
        let script = """
            set -e
            mkdir -p "$1"
            mount -t tmpfs -o size=16m,nr_inodes=30,mode=0700 fbk-test "$1"
            status=0
            "$2" restore --from "$3" --client c1 --signing-key "$4" --key "$5" latest --target "$1/out" || status=$?
            cp -a "$1/out" "$6/copy" 2>/dev/null || true
            exit $status
            """
        var env = ProcessInfo.processInfo.environment
        env["FBK_PASSPHRASE"] = f.passphrase
        let status = try spawnAndWait("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh",
                                                          target, CLI.binary.path, f.mirrors[0].storageRoot, f.dir.file("etc/signing.pub"),
                                                          f.keysDirectory + "/private.pem", scratch.path],
                                      environment: env, stdin: nil, stdout: scratch.file("out"), stderr: scratch.file("err"))
        let out = String(decoding: FileManager.default.contents(atPath: scratch.file("out")) ?? Data(), as: UTF8.self)
        let err = String(decoding: FileManager.default.contents(atPath: scratch.file("err")) ?? Data(), as: UTF8.self)
        #expect(status == 65, "incomplete restore: \(status) \(err)")
        let damaged = out.split(separator: "\n").filter { $0.hasPrefix("DAMAGED") }
        #expect(!damaged.isEmpty && out.contains("cannot create: No space left on device"), "\(out)\n\(err)")
        // What was restored is whole; what was left out is named.
        let rel = String(f.source.dropFirst())
        var restored = 0
        for i in 0..<40 {
            let name = "\(rel)/d\(i % 4)/f\(i)"
            if let bytes = FileManager.default.contents(atPath: scratch.file("copy/" + name)) {
                #expect([UInt8](bytes) == sampleBytes(3_000 + i, seed: UInt64(i)), "\(name)")
                restored += 1
            } else {
                #expect(damaged.contains { $0.hasSuffix(name) }, "\(name) is neither restored nor named: \(damaged)")
            }
        }
        #expect(restored > 0 && restored < 40, "\(restored)")
    }
}

/// `one_filesystem` keeps each configured path to its own filesystem, and a
/// configured path is taken even when another filesystem is mounted there.
/// The other filesystem is a tmpfs in a private mount namespace.
@Suite struct OneFilesystemTests {
    @Test func eachConfiguredPathKeepsToItsOwnFilesystem() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/here", Array("same filesystem".utf8))
        let mount = f.source + "/mnt"
        let config = try String(contentsOfFile: f.configPath, encoding: .utf8)
        /// Runs a snapshot of `paths` with a tmpfs holding top and sub/file
        /// mounted on src/mnt; returns what the snapshot holds below src.
        func snapshot(_ paths: [String]) throws -> [String] {
            let listed = paths.map { "  - \"\($0)\"\n" }.joined()
            try config.replacingOccurrences(of: "paths:\n  - \"\(f.source)\"\n", with: "paths:\n" + listed)
                .write(toFile: f.configPath, atomically: true, encoding: .utf8)
            let scratch = try TemporaryDirectory()
            let script = """
                set -e
                mkdir -p "$1"
                mount -t tmpfs -o size=1m fbk-test "$1"
                mkdir "$1/sub"
                echo top > "$1/top"
                echo file > "$1/sub/file"
                exec "$2" snapshot --config "$3" --json
                """
            let status = try spawnAndWait("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh",
                                                              mount, CLI.binary.path, f.configPath],
                                          environment: ProcessInfo.processInfo.environment, stdin: nil,
                                          stdout: scratch.file("out"), stderr: scratch.file("err"))
            let stderr = String(decoding: FileManager.default.contents(atPath: scratch.file("err")) ?? Data(), as: UTF8.self)
            try #require(status == 0, "\(paths): \(stderr)")
            let summary = try JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: scratch.file("out")) ?? Data())
            let id = try #require((summary as? [String: Any])?["snapshot"] as? String)
            let record = try #require(try f.records(0).first { $0.id.text == id })
            let chunks = try f.chunks(0)
            func walk(_ components: [[UInt8]], _ prefix: String) throws -> [String] {
                try f.entries(root: record.root, chunks: chunks, path: components).flatMap { e in
                    let path = prefix + String(decoding: e.name, as: UTF8.self)
                    return [path] + (e.type == .directory ? try walk(components + [e.name], path + "/") : [])
                }
            }
            return try walk(f.sourceComponents, "")
        }
        // The source whole: the mount point is recorded, not entered.
        #expect(try snapshot([f.source]) == ["here", "mnt"])
        // The mount point configured too: taken whole, all of it.
        #expect(try snapshot([f.source, mount]) == ["here", "mnt", "mnt/sub", "mnt/sub/file", "mnt/top"])
        // The mount point alone: its own filesystem is the one it keeps to.
        #expect(try snapshot([mount]) == ["mnt", "mnt/sub", "mnt/sub/file", "mnt/top"])
    }
}

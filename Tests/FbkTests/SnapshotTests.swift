import CLinux
import Foundation
import Seal
@testable import Format
@testable import Index
@testable import Archiver
import Testing
import TestSupport

/// Waits until files just written are old enough for the files cache
/// (`Archiver.settleTime`): a file changed just before it is listed is
/// read again next run.
func waitForFilesToSettle() {
    Thread.sleep(forTimeInterval: Double(Archiver.settleTime) / 1e9 + 0.1)
}

@Suite(.hangGuard) struct SnapshotTests {
    func writeSampleTree(_ f: SnapshotFixture) throws {
        var rng = SystemRandomNumberGenerator()
        try f.dir.write("src/big.bin", (0..<(3 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        try f.dir.write("src/etc/app.conf", Array(String(repeating: "key = value\n", count: 5000).utf8))
        try f.dir.write("src/etc/empty", [])
    }

    @Test func objectsLandOnBothMirrorsAndMatchTheFormat() throws {
        let f = try SnapshotFixture()
        try writeSampleTree(f)
        let r = try f.snapshot()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.summary["safe_mirrors"] as? Int == 2)
        #expect(f.objects(0) == f.objects(1))
        #expect(f.objects(0).filter { $0.hasSuffix(".pack") }.count >= 2)  // 1 MiB packs, 3 MiB of random data

        // Every sealed object decrypts with the openssl command line.
        let key = f.keysDirectory + "/private.pem", cert = f.keysDirectory + "/recipient.pem"
        for o in f.objects(0) where o.hasSuffix(".pack") || o.hasSuffix(".snapshot") {
            let out = try runTool("openssl", ["cms", "-decrypt", "-binary", "-inform", "DER", "-in", f.path(0, o),
                                              "-recip", cert, "-inkey", key, "-passin", "pass:" + f.passphrase])
            #expect(out.status == 0, "\(o): \(out.stderr)")
            if o.hasSuffix(".pack") {
                #expect(out.stdout.starts(with: Array("FBKPACK1".utf8)))
                #expect(try f.opener.open([UInt8](FileManager.default.contents(atPath: f.path(0, o))!)).plaintext == out.stdout)
            }
            // Pack names are the SHA-256 of the stored bytes.
            if o.hasSuffix(".pack") {
                let name = (o as NSString).lastPathComponent.replacingOccurrences(of: ".pack", with: "")
                #expect(try SHA256.hash(fileAt: f.path(0, o)).digest.hex == name)
            }
        }
        // Chunk IDs are HMACs of the plaintext (checked inside chunks()); the tree holds the files.
        let chunks = try f.chunks(0)
        let records = try f.records(0)
        #expect(records.count == 1)
        let src = try f.entries(root: records[0].root, chunks: chunks, path: f.sourceComponents)
        #expect(src.map { String(decoding: $0.name, as: UTF8.self) } == ["big.bin", "etc"])
        let big = src[0]
        let content = big.regions.flatMap { $0.chunks }.flatMap { chunks[$0]!.bytes }
        #expect(content == f.dir.read("src/big.bin"))

        // The catalog is signed and lists every pack with its size and hash.
        let catalogs = try f.catalogs(0)
        #expect(catalogs.count == 1)
        let catalog = catalogs[0]
        #expect(catalog.snapshot == records[0].id)
        #expect(Set(catalog.packs.map(\.path)) == Set(f.objects(0).filter { $0.hasSuffix(".pack") }))
        for p in catalog.packs {
            let (digest, size) = try SHA256.hash(fileAt: f.path(0, p.path))
            #expect(digest.hex == p.sha256 && size == p.size)
        }
        #expect(try SHA256.hash(fileAt: f.path(0, catalog.record.path)).digest.hex == catalog.record.sha256)
    }

    @Test func unchangedTreeIsNotReadAgain() throws {
        let f = try SnapshotFixture()
        try writeSampleTree(f)
        waitForFilesToSettle()
        #expect(try f.snapshot().status == 0)
        let packsBefore = f.objects(0).filter { $0.hasSuffix(".pack") }
        let chunksBefore = try f.chunks(0)
        let second = try f.snapshot()
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.summary["bytes_read"] as? Int == 0)
        #expect(second.summary["files_from_cache"] as? Int == second.summary["files"] as? Int)
        // Only tree chunks are new (directories above the source may have changed times).
        let newChunks = try f.chunks(0).filter { chunksBefore[$0.key] == nil }
        #expect(newChunks.values.allSatisfy { $0.kind == .tree })
        #expect(f.objects(0).filter { $0.hasSuffix(".pack") }.subtracting(packsBefore).count <= 1)
        #expect(try f.records(0).count == 2)
    }

    @Test func unchangedFilesTakeTheirExtendedAttributesFromTheFilesCache() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", Array("alpha".utf8))
        try f.dir.write("src/b", Array("beta".utf8))
        try FileManager.default.createDirectory(atPath: f.dir.file("src/d"), withIntermediateDirectories: true)
        func set(_ path: String, _ value: String) throws {
            let rc = "user.fbk".withCString { n in value.withCString { v in setxattr(f.dir.file(path), n, v, strlen(v), 0) } }
            try #require(rc == 0, "setxattr \(path): \(String(cString: strerror(errno)))")
        }
        try set("src/a", "one")
        try set("src/d", "directory")
        waitForFilesToSettle()
        /// Takes a snapshot; returns its summary and each entry's `user.fbk`.
        func snapshot() throws -> (summary: [String: Any], attributes: [String: String]) {
            let r = try f.snapshot()
            try #require(r.status == 0, "\(r.stderr)")
            let record = try #require(try f.records(0).first { $0.id.text == r.summary["snapshot"] as? String })
            let entries = try f.entries(root: record.root, chunks: try f.chunks(0), path: f.sourceComponents)
            var out: [String: String] = [:]
            for e in entries {
                out[String(decoding: e.name, as: UTF8.self)] = e.xattrs.first { $0.name == Array("user.fbk".utf8) }
                    .map { String(decoding: $0.value, as: UTF8.self) } ?? "-"
            }
            return (r.summary, out)
        }
        #expect(try snapshot().attributes == ["a": "one", "b": "-", "d": "directory"])

        // No change: the attributes come from the files cache, the same.
        let second = try snapshot()
        #expect(second.summary["files_from_cache"] as? Int == 2, "\(second.summary)")
        #expect(second.attributes == ["a": "one", "b": "-", "d": "directory"])

        // Rows from before attributes were kept: read from the files, and
        // the rows written again with them.
        let paths = [f.source + "/a", f.source + "/b"].map { Array($0.utf8) }
        do {
            let index = try Index.open(path: f.dir.file("state/index.sqlite"))
            for (path, row) in zip(paths, try index.files.cachedFiles(paths: paths)) {
                var old = try #require(row)
                #expect(old.xattrs != nil)
                old.xattrs = nil
                try index.files.cacheFile(path: path, old)
            }
        }
        let third = try snapshot()
        #expect(third.summary["files_from_cache"] as? Int == 2, "\(third.summary)")
        #expect(third.attributes == ["a": "one", "b": "-", "d": "directory"])
        do {
            let index = try Index.open(path: f.dir.file("state/index.sqlite"))
            let rows = try index.files.cachedFiles(paths: paths)
            #expect(rows.map { $0?.xattrs?.map(\.value) } == [[Array("one".utf8)], []])
        }

        // Setting an attribute changes the file's ctime: it is seen.
        try set("src/b", "two")
        try set("src/a", "three")
        #expect(try snapshot().attributes == ["a": "three", "b": "two", "d": "directory"])
    }

    @Test func aFileChangedJustBeforeItIsListedIsReadAgainNextTime() throws {
        // File times are coarse: a change in the same tick after the file
        // was read would not show, so such a file gets no files-cache row.
        let f = try SnapshotFixture()
        let written = ContinuousClock.now
        try f.dir.write("src/fresh", Array("new content".utf8))
        let first = try f.snapshot()
        #expect(first.status == 0 && first.summary["bytes_read"] as? Int == 11, "\(first.summary)")
        let second = try f.snapshot()
        #expect(second.status == 0)
        // The first run listed the file within the settle time, unless the
        // machine took that long to start it: then nothing can be said.
        if ContinuousClock.now - written < .nanoseconds(Archiver.settleTime) {
            #expect(second.summary["files_from_cache"] as? Int == 0 && second.summary["bytes_read"] as? Int == 11, "\(second.summary)")
        }
        // Once settled, the file is cached, and then not read again.
        waitForFilesToSettle()
        #expect(try f.snapshot().status == 0)
        let settled = try f.snapshot()
        #expect(settled.status == 0 && settled.summary["files_from_cache"] as? Int == 1 && settled.summary["bytes_read"] as? Int == 0,
                "\(settled.summary)")
    }

    @Test func aStoppedMirrorIsCaughtUpOnTheNextRun() throws {
        let f = try SnapshotFixture()
        try writeSampleTree(f)
        f.mirrors[1].stop()
        let first = try f.snapshot()
        #expect(first.status == 4, "\(first.stderr)")   // stored, a mirror behind
        #expect(first.summary["safe_mirrors"] as? Int == 1)
        let behind = first.summary["mirrors_behind"] as? [String] ?? []
        #expect(behind == [f.mirrors[1].url("c1")])
        #expect(f.objects(1).isEmpty)
        let spool = try FileManager.default.contentsOfDirectory(atPath: f.dir.file("state/spool"))
        #expect(spool.count == f.objects(0).count)

        try f.mirrors[1].start()
        let second = try f.snapshot()
        #expect(second.status == 0, "\(second.stderr)")
        #expect((second.summary["spool_delivered"] as? Int ?? 0) > 0)
        #expect(f.objects(0) == f.objects(1))
        #expect(second.summary["safe_mirrors"] as? Int == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.dir.file("state/spool")).isEmpty)
    }

    @Test func bothMirrorsDownFailsAndRecordsNothing() throws {
        let f = try SnapshotFixture()
        try writeSampleTree(f)
        f.mirrors[0].stop()
        f.mirrors[1].stop()
        let r = try f.snapshot()
        #expect(r.status == 75)
        #expect(r.stderr.contains("no mirror stored"), "\(r.stderr)")
        let index = try Index.open(path: f.dir.file("state/index.sqlite"))
        #expect(try index.ledger.snapshotIDs.isEmpty)
        #expect(try index.chunks.chunkCount == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.dir.file("state/spool")).isEmpty)
        // Once a mirror is back, the next run completes (the other still behind: 4).
        try f.mirrors[0].start()
        #expect(try f.snapshot().status == 4)
    }

    @Test func oddInputsAreStoredFaithfully() throws {
        let f = try SnapshotFixture()
        let src = f.source
        // Non-UTF-8 and 255-byte names.
        let odd: [UInt8] = Array(src.utf8) + [UInt8(ascii: "/"), 0xff, 0xfe, UInt8(ascii: "x")]
        let fd = open(odd.map { CChar(bitPattern: $0) } + [0], O_WRONLY | O_CREAT, 0o640)
        _ = write(fd, "odd", 3)
        close(fd)
        let long = String(repeating: "n", count: 255)
        try f.dir.write("src/" + long, Array("long".utf8))
        // Hardlinks, an empty file, a FIFO, a symlink, a deep tree.
        try f.dir.write("src/a", Array("linked".utf8))
        link(f.dir.file("src/a"), f.dir.file("src/b"))
        try f.dir.write("src/empty", [])
        mkfifo(f.dir.file("src/fifo"), 0o600)
        symlink("a", f.dir.file("src/link"))
        // Symbolic link loops, and a link to a directory above: stored as links, never followed.
        symlink("self", f.dir.file("src/self"))
        symlink("loop-b", f.dir.file("src/loop-a"))
        symlink("loop-a", f.dir.file("src/loop-b"))
        symlink("..", f.dir.file("src/up"))
        var deep = f.dir.file("src/deep")
        for _ in 0..<60 { deep += "/d" }
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        try f.dir.write(String(deep.dropFirst(f.dir.path.count + 1)) + "/leaf", [1])
        // A 64 MiB sparse file with 3 small data regions.
        let sfd = open(f.dir.file("src/sparse"), O_WRONLY | O_CREAT, 0o600)
        for offset in [0, 20 << 20, (64 << 20) - 4096] { _ = pwrite(sfd, [UInt8](repeating: 7, count: 4096), 4096, off_t(offset)) }
        close(sfd)

        let r = try f.snapshot()
        #expect(r.status == 0, "\(r.stderr)")
        let chunks = try f.chunks(0)
        let root = try f.records(0)[0].root
        let entries = try f.entries(root: root, chunks: chunks, path: f.sourceComponents)
        func entry(_ name: [UInt8]) -> TreeEntry? { entries.first { $0.name == name } }
        #expect(entry([0xff, 0xfe, UInt8(ascii: "x")])?.size == 3)
        #expect(entry(Array(long.utf8))?.type == .file)
        let a = entry(Array("a".utf8)), b = entry(Array("b".utf8))
        #expect(a?.type == .file && b?.type == .hardlink)
        #expect(b?.target == Array((f.sourceComponents + [Array("a".utf8)]).joined(separator: [UInt8(ascii: "/")])))
        #expect(entry(Array("empty".utf8))?.regions.isEmpty == true)
        #expect(entry(Array("fifo".utf8))?.type == .fifo)
        #expect(entry(Array("link".utf8))?.target == Array("a".utf8))
        for (name, target) in [("self", "self"), ("loop-a", "loop-b"), ("loop-b", "loop-a"), ("up", "..")] {
            #expect(entry(Array(name.utf8))?.type == .symlink && entry(Array(name.utf8))?.target == Array(target.utf8))
        }
        let sparse = try #require(entry(Array("sparse".utf8)))
        #expect(sparse.size == 64 << 20)
        #expect(sparse.regions.count == 3)
        #expect(sparse.regions.reduce(0) { $0 + $1.length } <= 3 * 4096 * 2)
        var path = f.sourceComponents + [Array("deep".utf8)]
        for _ in 0..<60 { path.append(Array("d".utf8)) }
        #expect(try f.entries(root: root, chunks: chunks, path: path).map(\.name) == [Array("leaf".utf8)])
    }

    @Test func aFileGrowingWhileReadIsStoredAsReadAndReported() throws {
        let f = try SnapshotFixture()
        let path = f.dir.file("src/growing.log")
        try f.dir.write("src/growing.log", [UInt8](repeating: 65, count: 96 << 20))
        try f.dir.write("src/other", Array("steady".utf8))
        // A writer appends to the log for as long as the snapshot runs.
        let stop = ManagedAtomicFlag()
        let writer = Thread {
            let fd = open(path, O_WRONLY | O_APPEND)
            defer { close(fd) }
            while !stop.isSet {
                _ = write(fd, "appended line\n", 14)
                usleep(500)
            }
        }
        writer.start()
        let r = try f.snapshot()
        stop.set()
        #expect(r.status == 0, "\(r.stderr)")
        let warnings = r.summary["warnings"] as? [String] ?? []
        #expect(warnings.contains { $0.contains("growing.log") && $0.contains("changed while being read") }, "\(warnings)")
        // What was read is stored: the file in the snapshot is a prefix of the file now.
        let chunks = try f.chunks(0)
        let entries = try f.entries(root: try f.records(0)[0].root, chunks: chunks, path: f.sourceComponents)
        let log = try #require(entries.first { $0.name == Array("growing.log".utf8) })
        let stored = log.regions.flatMap { $0.chunks }.flatMap { chunks[$0]!.bytes }
        let now = [UInt8](FileManager.default.contents(atPath: path)!)
        #expect(stored.count >= 96 << 20 && stored.count <= now.count)
        #expect(Array(now.prefix(stored.count)) == stored)
        #expect(UInt64(stored.count) == log.size)
    }

    /// A version of a churned file: a header naming it, then bytes that
    /// follow from the header, so any stored copy can be checked alone.
    static func churnVersion(_ name: String, _ generation: Int) -> [UInt8] {
        Array("\(name) \(generation)\n".utf8) + sampleBytes((generation * 7919) % 60_000, seed: UInt64(generation + 1))
    }

    @Test func filesVanishingAndReplacedWhileTheWalkRunsAreNeverStoredTorn() throws {
        let f = try SnapshotFixture()
        for i in 0..<20 { try f.dir.write("src/stable/s\(i)", sampleBytes(50_000 + i, seed: UInt64(i))) }
        for i in 0..<200 { try f.dir.write("src/churn/f\(i)", Self.churnVersion("f\(i)", i)) }
        for i in 0..<50 { try f.dir.write("src/grow/g\(i)", [UInt8](repeating: 0x61, count: 1000 * i)) }
        try FileManager.default.createDirectory(atPath: f.dir.file("staging"), withIntermediateDirectories: true)
        // Another process's churn: files deleted, and replaced by rename
        // (written elsewhere first), as fast as it can, during every run;
        // and files growing in place, as logs do.
        let stop = ManagedAtomicFlag()
        let churn = Thread {
            var generation = 200
            while !stop.isSet {
                let name = "f\(generation % 200)"
                let target = f.dir.file("src/churn/" + name)
                if generation % 3 == 0 {
                    unlink(target)
                } else {
                    let staged = f.dir.file("staging/" + name)
                    _ = try? f.dir.write("staging/" + name, Self.churnVersion(name, generation))
                    rename(staged, target)
                }
                let grow = open(f.dir.file("src/grow/g\(generation % 50)"), O_WRONLY | O_APPEND)
                _ = write(grow, [UInt8](repeating: 0x61, count: 997), 997)
                close(grow)
                generation += 1
            }
        }
        churn.start()
        defer { stop.set() }
        for run in 0..<3 {
            let r = try f.snapshot()
            #expect(r.status == 0, "run \(run): \(r.stderr)")
            for w in r.summary["warnings"] as? [String] ?? [] {
                #expect(w.contains("vanished before it was read") || w.contains("was replaced while being read")
                        || w.contains("changed while being read"), "run \(run): \(w)")
            }
        }
        stop.set()
        let chunks = try f.chunks(0)
        for record in try f.records(0) {
            let root = f.sourceComponents
            let stable = try f.entries(root: record.root, chunks: chunks, path: root + [Array("stable".utf8)])
            #expect(stable.count == 20)
            for e in stable {
                let i = Int(String(decoding: e.name.dropFirst(), as: UTF8.self))!
                #expect(e.regions.flatMap(\.chunks).flatMap { chunks[$0]!.bytes } == sampleBytes(50_000 + i, seed: UInt64(i)))
            }
            // Every churned file stored is one whole version of it.
            for e in try f.entries(root: record.root, chunks: chunks, path: root + [Array("churn".utf8)]) {
                let bytes = e.regions.flatMap(\.chunks).flatMap { chunks[$0]!.bytes }
                let header = String(decoding: bytes.prefix { $0 != 10 }, as: UTF8.self).split(separator: " ")
                let name = String(decoding: e.name, as: UTF8.self)
                guard header.count == 2, header[0] == name, let generation = Int(header[1]) else {
                    Issue.record("\(name) stored with a torn header: \(header)")
                    continue
                }
                #expect(bytes == Self.churnVersion(name, generation), "\(name) generation \(generation) stored torn")
                #expect(UInt64(bytes.count) == e.size)
            }
            // A file that grew after it was listed is stored with the size
            // of what was read (its tree parsed above, regions and size agree).
            let grown = try f.entries(root: record.root, chunks: chunks, path: root + [Array("grow".utf8)])
            #expect(grown.count == 50)
            for e in grown {
                let bytes = e.regions.flatMap(\.chunks).flatMap { chunks[$0]!.bytes }
                #expect(UInt64(bytes.count) == e.size && bytes.allSatisfy { $0 == 0x61 }, "\(String(decoding: e.name, as: UTF8.self))")
            }
        }
    }

    /// Makes `depth` nested directories named "d" below `base`, by descriptor
    /// (paths past PATH_MAX cannot be made by name), with a file at the bottom.
    func makeDeepTree(_ base: String, depth: Int) {
        mkdir(base, 0o755)
        var fd = open(base, O_RDONLY | O_DIRECTORY)
        for _ in 0..<depth {
            mkdirat(fd, "d", 0o755)
            let next = openat(fd, "d", O_RDONLY | O_DIRECTORY)
            close(fd)
            fd = next
        }
        let leaf = openat(fd, "leaf", O_WRONLY | O_CREAT, 0o644)
        _ = write(leaf, "bottom", 6)
        close(leaf)
        close(fd)
    }

    /// The leaf at the bottom of a tree made by `makeDeepTree`, read by descriptor.
    func readDeepLeaf(_ base: String, depth: Int) -> String? {
        var fd = open(base, O_RDONLY | O_DIRECTORY)
        for _ in 0..<depth where fd >= 0 {
            let next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            close(fd)
            fd = next
        }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let leaf = openat(fd, "leaf", O_RDONLY)
        guard leaf >= 0 else { return nil }
        defer { close(leaf) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(leaf, &buffer, 64)
        return n >= 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }

    @Test func treesDeeperThanPathMaxAreStoredAndRestored() throws {
        let f = try SnapshotFixture()
        // 10,000 levels: paths of 20,000 bytes, five times PATH_MAX. The
        // walk and the restore reach them through directories opened in
        // pieces, and recurse per level on a large stack.
        let depth = 10_000
        makeDeepTree(f.dir.file("src/deep"), depth: depth)
        let r = try f.snapshot()
        #expect(r.status == 0, "\(r.stderr.suffix(500))")
        #expect((r.summary["warnings"] as? [String] ?? []).isEmpty, "\((r.summary["warnings"] as? [String] ?? []).prefix(3))")
        #expect(r.summary["directories"] as? Int ?? 0 >= depth)
        let target = f.dir.file("t")
        let restore = try CLI.run(["restore", "--from", f.mirrors[0].storageRoot, "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem",
                                   "latest", "--target", target], environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(restore.status == 0, "\(restore.stdout.suffix(300)) \(restore.stderr.suffix(300))")
        #expect(readDeepLeaf(target + f.source + "/deep", depth: depth) == "bottom")
    }

    @Test func aLargeDirectoryIsStoredAsATreeOfParts() throws {
        let f = try SnapshotFixture()
        // 150,000 entries (about 12 MB of tree, so three parts): FIFOs, cheap
        // to make and never opened, and one in a thousand a small file.
        // (A million, in a release build: docs/RELIABILITY.md.)
        let total = 150_000
        let huge = f.dir.file("src/huge")
        mkdir(huge, 0o755)
        let dirFD = open(huge, O_RDONLY | O_DIRECTORY)
        for i in 0..<total {
            let name = String(format: "e%07d", i)
            if i % 1000 == 0 {
                let fd = openat(dirFD, name, O_WRONLY | O_CREAT, 0o644)
                _ = write(fd, name, name.utf8.count)
                close(fd)
            } else if i % 9973 == 255 {
                // Subdirectories across batch boundaries, walked ahead in turn.
                mkdirat(dirFD, name, 0o755)
                try f.dir.write("src/huge/\(name)/inner/file", Array(name.utf8))
            } else {
                mkfifoat(dirFD, name, 0o644)
            }
        }
        close(dirFD)
        let r = try f.snapshot()
        #expect(r.status == 0, "\(r.stderr.suffix(500))")

        // The directory's tree is a tree of parts whose entries join to all of it, in order.
        let chunks = try f.chunks(0)
        let parent = try f.entries(root: try f.records(0)[0].root, chunks: chunks, path: f.sourceComponents)
        let subtree = try #require(parent.first { $0.name == Array("huge".utf8) }?.subtree)
        let top = try #require(chunks[subtree]).bytes
        #expect(Array(top.prefix(8)) == Array("FBKTREEP".utf8))
        let count = Int(top[8]) | Int(top[9]) << 8 | Int(top[10]) << 16 | Int(top[11]) << 24
        #expect(count >= 2 && top.count == 12 + 32 * count)
        var names: [[UInt8]] = []
        for i in 0..<min(count, 100) {
            let part = Digest(bytes: Array(top[(12 + 32 * i)..<(44 + 32 * i)]))!
            names += try TreeFormat.parse(try #require(chunks[part]).bytes).map(\.name)
        }
        #expect(names == (0..<total).map { Array(String(format: "e%07d", $0).utf8) })

        // The operator's reader joins the parts: verify walks every tree and checks every file.
        let verify = try CLI.run(["verify", "--from", f.mirrors[0].storageRoot, "--client", "c1",
                                  "--signing-key", f.dir.file("etc/signing.pub"), "--key", f.keysDirectory + "/private.pem", "latest"],
                                 environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(verify.status == 0, "\(verify.stdout.suffix(300)) \(verify.stderr.suffix(300))")
        // A rerun gives the same tree: the parts are cut at the same places.
        let again = try f.snapshot()
        #expect(again.status == 0)
        let records = try f.records(0)
        #expect(records.count == 2)
        let later = try f.entries(root: records[1].root, chunks: try f.chunks(0), path: f.sourceComponents)
        #expect(later.first { $0.name == Array("huge".utf8) }?.subtree == subtree)
    }

    @Test func aPackOfSmallFilesIsSealedAtItsChunkCount() throws {
        // Every file waits in memory until its pack is on the mirrors, so a
        // pack holds at most 4096 chunks however small they are. 4500 tiny
        // files are far below one pack's size but need two packs.
        let f = try SnapshotFixture()
        let total = 4500
        for i in 0..<total { _ = try f.dir.write("src/d\(i % 10)/f\(i)", Array("file \(i)\n".utf8)) }
        waitForFilesToSettle()
        let r = try f.snapshot()
        #expect(r.status == 0, "\(r.stderr.suffix(500))")
        let opener = f.opener
        let counts = try f.objects(0).filter { $0.hasSuffix(".pack") }.map { try f.pack(0, $0, opener: opener).entries.count }
        #expect(counts.count >= 2, "\(counts)")
        #expect(counts.allSatisfy { $0 <= 4096 }, "\(counts)")
        // Every file's chunk was stored (each file is one chunk of its own),
        // and every file is in the files cache: a rerun reads none.
        let chunks = try f.chunks(0)
        #expect(chunks.values.filter { $0.kind == .data }.count == total)
        let again = try f.snapshot()
        #expect(again.status == 0)
        #expect(again.summary["bytes_read"] as? Int == 0)
        #expect(again.summary["files_from_cache"] as? Int == total, "\(again.summary)")
    }

    @Test func configurationErrorsNameTheLineAndFailClosed() throws {
        let f = try SnapshotFixture()
        var text = try String(contentsOfFile: f.configPath, encoding: .utf8)
        text += "colour: blue\n"
        try text.write(toFile: f.configPath, atomically: true, encoding: .utf8)
        let bad = try f.snapshot()
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("fbk.conf:\(text.split(separator: "\n").count): unknown field 'colour'"), "\(bad.stderr)")

        text = text.replacingOccurrences(of: "colour: blue\n", with: "")
        try text.write(toFile: f.configPath, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: f.keysDirectory + "/recipient.pem")
        let noCert = try f.snapshot()
        #expect(noCert.status == 66)
        #expect(noCert.stderr.contains("cannot read certificate"), "\(noCert.stderr)")
        #expect(f.objects(0).isEmpty && f.objects(1).isEmpty)
    }
}

/// A flag set by one thread and read by another.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

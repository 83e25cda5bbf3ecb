import Foundation
import Testing
import TestSupport

/// Exclusions as restic, borg and borgmatic users write them (README,
/// "Client configuration"): `exclude_from` files, `exclude_caches`,
/// `exclude_if_present`, `exclude_larger_than`, beside `excludes`.
@Suite(.hangGuard) struct ExclusionTests {
    /// The paths (relative to the source) a snapshot holds, from `fbk ls -R`.
    func listed(_ f: SnapshotFixture) throws -> Set<String> {
        let ls = try CLI.run(["ls", "--from", f.mirrors[0].storageRoot, "--client", "c1", "--signing-key", f.dir.file("etc/signing.pub"),
                              "--key", f.keysDirectory + "/private.pem", "latest", f.source, "-R"], environment: ["FBK_PASSPHRASE": f.passphrase])
        #expect(ls.status == 0, "\(ls.stderr)")
        // Lines end with the path, without its leading slash.
        let prefix = String(f.source.dropFirst()) + "/"
        return Set(ls.stdout.split(separator: "\n").compactMap { line in
            line.range(of: " " + prefix).map { String(line[$0.upperBound...]) }
        })
    }

    @Test func eachKindOfExclusionLeavesOutWhatItNames() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/keep/a", Array("kept\n".utf8))
        try f.dir.write("src/cache/CACHEDIR.TAG", Array("Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n".utf8))
        try f.dir.write("src/cache/blob", sampleBytes(5_000, seed: 1))
        try f.dir.write("src/notcache/CACHEDIR.TAG", Array("Signature: not the one\n".utf8))
        try f.dir.write("src/notcache/b", Array("kept too\n".utf8))
        try f.dir.write("src/private/.nobackup", [])
        try f.dir.write("src/private/secret", Array("left out\n".utf8))
        try f.dir.write("src/big.iso", sampleBytes(300_000, seed: 2))
        try f.dir.write("src/small.txt", Array("small\n".utf8))
        try f.dir.write("src/logs/x.log", Array("log\n".utf8))
        try f.dir.write("src/logs/keep.txt", Array("text\n".utf8))
        try f.dir.write("src/build/out.o", Array("object\n".utf8))
        let patterns = try f.dir.write("excludes.txt", Array("""
            # compiled objects and logs
            *.o

            *.log
            """.utf8))
        try f.configure("""
            exclude_from: [\(patterns)]
            exclude_caches: true
            exclude_if_present: [.nobackup]
            exclude_larger_than: 100KiB
            """)
        let r = try f.snapshot()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.summary["excluded_large_files"] as? Int == 1, "\(r.summary)")
        let paths = try listed(f)
        for kept in ["keep/a", "notcache/b", "notcache/CACHEDIR.TAG", "small.txt", "logs/keep.txt", "cache", "private", "build"] {
            #expect(paths.contains(kept), "\(kept) is kept: \(paths.sorted())")
        }
        for left in ["cache/blob", "cache/CACHEDIR.TAG", "private/secret", "private/.nobackup", "big.iso", "logs/x.log", "build/out.o"] {
            #expect(!paths.contains(left), "\(left) is left out: \(paths.sorted())")
        }
        // A rerun agrees with itself (the walker and the archiver ask about each directory once each).
        #expect(try f.snapshot().status == 0)
        #expect(try listed(f) == paths)
    }

    @Test func aPatternFileThatCannotBeReadStopsTheRunAndSaysWhich() throws {
        let f = try SnapshotFixture()
        try f.dir.write("src/a", Array("a\n".utf8))
        try f.configure("exclude_from: [\(f.dir.file("missing-excludes"))]")
        let r = try f.snapshot()
        #expect(r.status == 64, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("missing-excludes"), "\(r.stderr)")
    }
}

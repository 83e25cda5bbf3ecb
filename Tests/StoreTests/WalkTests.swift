import Foundation
import Seal
@testable import Platform
@testable import Format
@testable import Index
@testable import Archiver
import Testing
import TestSupport

@Suite struct WalkTests {
    /// A tree whose directories take several batches, with subdirectories
    /// at and across batch boundaries, an excluded name and an empty directory.
    func makeTree() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        for i in 0..<700 {
            let name = String(format: "e%04d", i)
            if i % 97 == 0 || i == 255 || i == 256 {
                for j in 0..<300 { _ = try dir.write("\(name)/f\(j)", [UInt8(j & 0xFF)]) }
                try FileManager.default.createDirectory(atPath: dir.file("\(name)/empty"), withIntermediateDirectories: true)
            } else {
                _ = try dir.write(name, [1])
            }
        }
        _ = try dir.write("e0000/skip.tmp", [2])
        return dir
    }

    let rules = WalkRules(excludes: ["*.tmp"], builtIn: [], configured: [], oneFilesystem: true)

    /// Takes the walk as the archiver does: a batch, then each directory
    /// of it the rules enter, then the next batch; returns every path met.
    func take(_ walker: DirectoryWalker, _ path: PathBytes, device: UInt64) throws -> [String] {
        var out: [String] = []
        while true {
            let batch = try walker.next(of: path)
            for e in batch.entries {
                out.append(e.path.displayPath)
                if let st = e.stat, st.st_mode & S_IFMT == S_IFDIR, rules.enters(e.path, st, device: device) {
                    out += try take(walker, e.path, device: device)
                }
            }
            if batch.isLast { return out }
        }
    }

    @Test func theWalkAheadGivesTheArchiversOrder() throws {
        let dir = try makeTree()
        let root = Array(dir.path.utf8)
        let device = UInt64(FileSystem.lstat(root)!.st_dev)
        let walker = DirectoryWalker(root: root, device: device, rules: rules, lookahead: 16)
        defer { walker.stop() }
        let walked = try take(walker, root, device: device)
        // The same as a depth-first listing in byte order, less the excluded name.
        func expected(_ path: String) -> [String] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            return names.filter { !$0.hasSuffix(".tmp") }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.flatMap { name in
                var isDirectory: ObjCBool = false
                FileManager.default.fileExists(atPath: path + "/" + name, isDirectory: &isDirectory)
                return [path + "/" + name] + (isDirectory.boolValue ? expected(path + "/" + name) : [])
            }
        }
        #expect(walked == expected(dir.path))
        #expect(walked.count == 700 + 10 * 301)
    }

    @Test func aWalkOutOfStepFailsAndStopReturnsWhileTheWalkerWaits() throws {
        let dir = try makeTree()
        let root = Array(dir.path.utf8)
        let device = UInt64(FileSystem.lstat(root)!.st_dev)
        let walker = DirectoryWalker(root: root, device: device, rules: rules, lookahead: 16)
        _ = try walker.next(of: root)
        // The walker is now blocked, 16 entries ahead; a wrong path is an error, not a hang.
        Thread.sleep(forTimeInterval: 0.2)
        #expect(throws: StoreError.self) { try walker.next(of: root + Array("/elsewhere".utf8)) }
        let clock = ContinuousClock()
        let stopped = clock.measure { walker.stop() }
        #expect(stopped < .seconds(5))
    }

    @Test func theFilesCacheIsReadByRangePassingOverSubdirectories() throws {
        let dir = try TemporaryDirectory()
        let index = try Index.create(path: dir.file("index.sqlite"))
        func row(_ size: UInt64) -> FilesCache.CachedFile {
            FilesCache.CachedFile(dev: 1, ino: size, size: size, mtime: 2, ctime: 3, regions: EncodedRegions([]), packs: [], xattrs: [])
        }
        // "s" is a directory whose 100 files sort between its siblings
        // "s-1" and "s0" ('-' < '/' < '0').
        var stored: [String: UInt64] = ["/d/a": 1, "/d/s-1": 2, "/d/s0": 3, "/d/u": 4]
        for i in 0..<100 { stored["/d/s/x\(i)"] = UInt64(100 + i) }
        stored["/other"] = 9
        try index.transaction {
            for (path, size) in stored { try index.files.cacheFile(path: Array(path.utf8), row(size)) }
        }
        let wanted = ["/d/0", "/d/a", "/d/b", "/d/s-1", "/d/s0", "/d/t", "/d/u", "/d/zz"]
        let rows = try index.files.cachedFiles(paths: wanted.map { Array($0.utf8) })
        #expect(rows.map { $0?.size } == [nil, 1, nil, 2, 3, nil, 4, nil])
        #expect(try index.files.cachedFiles(paths: []).isEmpty)
        #expect(try index.files.cachedFiles(paths: [Array("/d/s/x7".utf8)]).map { $0?.size } == [107])
    }
}

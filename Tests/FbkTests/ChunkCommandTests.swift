import Chunker
import Foundation
import Seal
import Format
import TestSupport
import Testing

@Suite struct ChunkCommandTests {
    @Test func reportsEveryFileAndTotalsAsJSON() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.file("sub"), withIntermediateDirectories: true)
        var rng = SystemRandomNumberGenerator()
        let big = (0..<(3 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        try Data(big).write(to: URL(fileURLWithPath: dir.file("sub/big.bin")))
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: dir.file("small.txt")))
        try Data().write(to: URL(fileURLWithPath: dir.file("empty")))

        let r = try CLI.run(["chunk", "--json", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(json["total_files"] as? Int == 3)
        #expect(json["total_bytes"] as? Int == big.count + 6)

        // The chunk count for the big file equals the library's own cut.
        let chunker = try Chunker(seed: [UInt8](repeating: 0, count: 32))
        let expected = big.withUnsafeBytes { chunker.chunkLengths(of: $0) }.count
        let files = json["files"] as! [[String: Any]]
        let bigEntry = files.first { ($0["path"] as! String).hasSuffix("sub/big.bin") }!
        #expect(bigEntry["chunks"] as? Int == expected)
        let emptyEntry = files.first { ($0["path"] as! String).hasSuffix("/empty") }!
        #expect(emptyEntry["chunks"] as? Int == 0)
        #expect(json["total_chunks"] as? Int == expected + 1)
    }

    @Test func aClientSecretCutsAsThatClientAndListsEachChunk() throws {
        let dir = try TemporaryDirectory()
        let data = sampleBytes(3 << 20, seed: 11)
        try Data(data).write(to: URL(fileURLWithPath: dir.file("f")))
        let secret = [UInt8](repeating: 0x5a, count: 32)
        try Data((Hex.encode(secret) + "\n").utf8).write(to: URL(fileURLWithPath: dir.file("secret")))
        chmod(dir.file("secret"), 0o600)

        let r = try CLI.run(["chunk", "--json", "--list", "--secret", dir.file("secret"), dir.file("f")])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let list = (json["files"] as! [[String: Any]])[0]["list"] as! [[Int]]
        let chunker = try Chunker(seed: try ClientKeys(secret: secret).chunkerSeed)
        let lengths = data.withUnsafeBytes { chunker.chunkLengths(of: $0) }
        #expect(list.map { $0[1] } == lengths)
        #expect(list.map { $0[0] } == lengths.indices.map { lengths[..<$0].reduce(0, +) })
        #expect(lengths.count > 1)

        let text = try CLI.run(["chunk", "--list", "--secret", dir.file("secret"), dir.file("f")])
        #expect(text.stdout.contains("\n  0 \(lengths[0])\n"))
    }

    @Test func textReportEndsWithTotals() throws {
        let dir = try TemporaryDirectory()
        try Data(repeating: 7, count: 100_000).write(to: URL(fileURLWithPath: dir.file("f")))
        let r = try CLI.run(["chunk", "--min", "4096", "--avg", "16384", "--max", "65536", dir.file("f")])
        #expect(r.status == 0)
        #expect(r.stdout.contains("total: 1 files, 100000 bytes"))
    }

    @Test func badSeedAndParametersAreUsageErrors() throws {
        let short = try CLI.run(["chunk", "--seed", "abcd", "/dev/null"])
        #expect(short.status == 64)
        #expect(short.stderr.contains("64 hexadecimal digits"))
        let sizes = try CLI.run(["chunk", "--min", "100", "--avg", "50", "/dev/null"])
        #expect(sizes.status == 64)
        #expect(sizes.stderr.contains("average size 50 must be larger than the minimum size 100"))
    }

    @Test func missingPathIsReported() throws {
        let r = try CLI.run(["chunk", "/nonexistent/fbk-test-path"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("/nonexistent/fbk-test-path: no such file or directory"))
    }
}

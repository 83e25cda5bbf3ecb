import Foundation
import Seal
import Testing

@Suite struct DigestTests {
    @Test func sha256KnownAnswers() {
        #expect(SHA256.hash([UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hash(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func incrementalEqualsOneShotAndFileHashMatchesSha256sum() throws {
        let data = sampleBytes(3_000_001)
        let h = SHA256()
        var i = 0
        while i < data.count {
            let n = min(77_777, data.count - i)
            h.update(Array(data[i..<(i + n)]))
            i += n
        }
        #expect(h.finalize() == SHA256.hash(data))
        let dir = try TempDir()
        let path = try dir.write("f", data)
        let (digest, size) = try SHA256.hash(fileAt: path)
        #expect(size == data.count)
        let tool = try runTool("sha256sum", [path])
        #expect(String(decoding: tool.stdout.prefix(64), as: UTF8.self) == digest.hex)
    }

    @Test func hmacMatchesRFC4231() {
        // RFC 4231, test case 2.
        let mac = HMACSHA256.mac(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))
        #expect(mac.hex == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // A reused instance starts over with the same key.
        let h = HMACSHA256(key: Array("Jefe".utf8))
        h.update(Array("what do ya want ".utf8))
        h.update(Array("for nothing?".utf8))
        #expect(h.finalize() == mac)
        h.update(Array("what do ya want for nothing?".utf8))
        #expect(h.finalize() == mac)
    }

    @Test func digestHexRoundTripsAndRejectsBadInput() {
        let d = SHA256.hash(Array("x".utf8))
        #expect(Digest(hex: d.hex) == d)
        #expect(Digest(hex: d.hex.uppercased()) == d)
        #expect(Digest(hex: "abc") == nil)
        #expect(Digest(hex: String(repeating: "g", count: 64)) == nil)
        #expect(Digest(bytes: [1, 2, 3]) == nil)
        #expect(secureRandomBytes(32) != secureRandomBytes(32))
    }
}

@Suite struct CompressionTests {
    @Test func compressibleChunksShrinkAndRoundTrip() throws {
        let c = try ChunkCompressor(level: 3)
        let d = ChunkDecompressor()
        let text = sampleBytes(1 << 20, compressible: true)
        let (form, bytes) = try text.withUnsafeBytes { try c.compress($0) }
        #expect(form == .zstd)
        #expect(bytes.count < text.count / 2)
        #expect(try bytes.withUnsafeBytes { try d.decompress($0, form: form, plainLength: text.count) } == text)
        // The frame is standard zstd.
        #expect(try runTool("zstd", ["-dc"], stdin: bytes).stdout == text)
    }

    @Test func incompressibleChunksAreStoredNeverExpanded() throws {
        let c = try ChunkCompressor()
        let random = sampleBytes(256 << 10)
        let (form, bytes) = try random.withUnsafeBytes { try c.compress($0) }
        #expect(form == .stored)
        #expect(bytes == random)
        let empty = try [UInt8]().withUnsafeBytes { try c.compress($0) }
        #expect(empty.form == .stored && empty.bytes.isEmpty)
    }

    @Test func aCompressibleStretchInRandomDataIsFoundAndCompressed() throws {
        let c = try ChunkCompressor()
        // 2 MiB of random data with 70 KiB of text at an odd place.
        var mixed = sampleBytes(2 << 20, seed: 5)
        let text = sampleBytes(70 << 10, compressible: true)
        mixed.replaceSubrange(777_777..<(777_777 + text.count), with: text)
        let (form, bytes) = try mixed.withUnsafeBytes { try c.compress($0) }
        #expect(form == .zstd && bytes.count < mixed.count - 20_000, "\(mixed.count - bytes.count) bytes saved")
        #expect(try bytes.withUnsafeBytes { try ChunkDecompressor().decompress($0, form: form, plainLength: mixed.count) } == mixed)
        // Random data alone is stored as it is.
        let random = sampleBytes(2 << 20, seed: 6)
        #expect(try random.withUnsafeBytes { try c.compress($0) }.form == .stored)
    }

    @Test func wrongLengthAndCorruptDataAreErrors() throws {
        let c = try ChunkCompressor()
        let d = ChunkDecompressor()
        let text = sampleBytes(100_000, compressible: true)
        let (_, bytes) = try text.withUnsafeBytes { try c.compress($0) }
        for length in [text.count - 1, text.count + 1] {
            #expect(throws: SealError.self) {
                try bytes.withUnsafeBytes { try d.decompress($0, form: .zstd, plainLength: length) }
            }
        }
        var corrupt = bytes
        corrupt[corrupt.count / 2] ^= 0xFF
        corrupt[corrupt.count / 2 + 1] ^= 0x55
        do {
            let out = try corrupt.withUnsafeBytes { try d.decompress($0, form: .zstd, plainLength: text.count) }
            // zstd without a checksum can decode flipped literals; callers catch
            // that with the chunk ID. It must never be the original.
            #expect(out != text)
        } catch let e as SealError {
            #expect(e.code == .corruptCompressedData)
        }
        #expect(throws: SealError.self) {
            try [UInt8](repeating: 7, count: 50).withUnsafeBytes { try d.decompress($0, form: .zstd, plainLength: 50) }
        }
        #expect(throws: SealError.self) { try ChunkCompressor(level: 0) }
        #expect(throws: SealError.self) { try ChunkCompressor(level: 22) }
    }

    @Test func streamsInteroperateWithZstdCommandLine() throws {
        let text = sampleBytes(5 << 20, seed: 9, compressible: true)
        let sc = try StreamCompressor(level: 3)
        var compressed: [UInt8] = []
        var i = 0
        while i < text.count {
            let n = min(300_000, text.count - i)
            try text[i..<(i + n)].withUnsafeBytes { try sc.compress($0) { compressed += $0 } }
            i += n
        }
        try sc.finish { compressed += $0 }
        #expect(try runTool("zstd", ["-dc"], stdin: compressed).stdout == text)

        let fromTool = try runTool("zstd", ["-3", "-c"], stdin: text).stdout
        let sd = StreamDecompressor()
        var plain: [UInt8] = []
        var j = 0
        while j < fromTool.count {
            let n = min(4096, fromTool.count - j)
            try fromTool[j..<(j + n)].withUnsafeBytes { try sd.decompress($0) { plain += $0 } }
            j += n
        }
        try sd.finish()
        #expect(plain == text)

        let truncated = StreamDecompressor()
        try fromTool.prefix(fromTool.count / 2).withUnsafeBytes { try truncated.decompress($0) { _ in } }
        #expect(throws: SealError.self) { try truncated.finish() }
    }
}

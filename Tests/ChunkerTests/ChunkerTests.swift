import Testing
@testable import Chunker

@Suite struct ReassemblyTests {
    static let defaultMax = ChunkerParameters.default.maximumSize
    static let defaultMin = ChunkerParameters.default.minimumSize

    static let inputs: [(String, [UInt8])] = {
        var g = TestData(seed: 7)
        return [
            ("empty", []),
            ("one byte", [42]),
            ("exactly min", g.bytes(defaultMin)),
            ("exactly max", g.bytes(defaultMax)),
            ("max + 1", g.bytes(defaultMax + 1)),
            ("all zeros 20 MiB", [UInt8](repeating: 0, count: 20 << 20)),
            ("one repeated byte 3 MiB", [UInt8](repeating: 0xA5, count: 3 << 20)),
            ("random 12 MiB", g.bytes(12 << 20)),
        ]
    }()

    @Test(arguments: 0..<inputs.count)
    func concatenatedChunksEqualInput(_ index: Int) {
        let (name, data) = Self.inputs[index]
        let chunks = chunksStreamed(data, .default, sizes: { 1 << 20 })
        #expect(chunks.flatMap { $0 } == data, "\(name)")
        #expect(chunks.allSatisfy { !$0.isEmpty }, "\(name): empty chunk emitted")
        for c in chunks.dropLast() {
            #expect(c.count >= ChunkerParameters.default.minimumSize, "\(name)")
        }
        #expect(chunks.allSatisfy { $0.count <= ChunkerParameters.default.maximumSize }, "\(name)")
    }

    @Test func emptyStreamHasNoChunks() {
        #expect(lengths([]) == [])
    }

    @Test func inputShorterThanMinimumIsOneChunk() {
        var g = TestData(seed: 3)
        #expect(lengths(g.bytes(1000)) == [1000])
    }

    @Test func maxPlusOneSplitsAtMaximumWhenNoCutFound() {
        // All zeros with this seed never meets the threshold, so it is cut at max.
        let table = try! BuzhashTable(seed: zeroSeed)
        let zeroHash = table.hash(window: [UInt8](repeating: 0, count: 64))
        #expect(zeroHash >= ChunkerParameters.default.threshold)
        let data = [UInt8](repeating: 0, count: Self.defaultMax + 1)
        #expect(lengths(data) == [Self.defaultMax, 1])
    }

    @Test func chunkerIsReusableAfterFinish() {
        var g = TestData(seed: 11)
        let a = g.bytes(3 << 20)
        let chunker = try! Chunker(seed: zeroSeed)
        let first = a.withUnsafeBytes { chunker.chunkLengths(of: $0) }
        // Leave a partial chunk behind, then reset by finishing.
        a.withUnsafeBytes { chunker.feed(UnsafeRawBufferPointer(rebasing: $0[0..<1000])) { _ in } }
        chunker.finish { _ in }
        let second = a.withUnsafeBytes { chunker.chunkLengths(of: $0) }
        #expect(first == second)
    }
}

@Suite struct StreamingTests {
    @Test(arguments: 0..<24)
    func randomReadSizesGiveOneShotBoundaries(seed: Int) {
        var g = TestData(seed: UInt64(seed) &* 0x9E37_79B9 &+ 1)
        let data = g.bytes(512 << 10 + g.upTo(64 << 10))
        let expected = lengths(data, smallParameters)
        // Mix of tiny reads, pipe-sized reads and reads larger than a chunk.
        let limits = [1, 7, 4096, 65_536, 100_000]
        let limit = limits[seed % limits.count]
        let chunks = chunksStreamed(data, smallParameters, sizes: { g.upTo(limit) })
        #expect(chunks.map(\.count) == expected)
        #expect(chunks.flatMap { $0 } == data)
    }

    @Test func defaultParametersStreamedLikeFileReads() {
        var g = TestData(seed: 99)
        let data = g.bytes(24 << 20)
        let expected = lengths(data)
        #expect(chunksStreamed(data, .default, sizes: { 1 << 20 }).map(\.count) == expected)
        #expect(chunksStreamed(data, .default, sizes: { 4096 }).map(\.count) == expected)
        #expect(chunksStreamed(data, .default, sizes: { g.upTo(3 << 20) }).map(\.count) == expected)
    }

    @Test(arguments: [1, 2, 3, 5, 8])
    func fastLoopAgreesWithReferenceImplementation(seed: Int) {
        var g = TestData(seed: UInt64(seed))
        // Random data, then a low-entropy stretch, then random again.
        let data = g.bytes(200_000) + [UInt8](repeating: 1, count: 70_000) + g.bytes(90_001)
        for params in [smallParameters,
                       ChunkerParameters(minimumSize: 100, averageSize: 700, maximumSize: 3000, windowSize: 31),
                       ChunkerParameters(minimumSize: 64, averageSize: 65, maximumSize: 64 << 10, windowSize: 64)] {
            #expect(lengths(data, params, seed: countingSeed) == referenceLengths(data, params, seed: countingSeed),
                    "\(params)")
        }
    }
}

@Suite struct DistributionTests {
    @Test func boundsAndMeanOn256MiBOfRandomData() {
        let chunker = try! Chunker(seed: countingSeed)
        var g = TestData(seed: 2026)
        var lengths: [Int] = []
        let block = 4 << 20
        for _ in 0..<(256 << 20) / block {
            let data = g.bytes(block)
            data.withUnsafeBytes { chunker.feed($0) { lengths.append($0.count) } }
        }
        chunker.finish { lengths.append($0.count) }
        let p = ChunkerParameters.default
        #expect(lengths.reduce(0, +) == 256 << 20)
        #expect(lengths.dropLast().allSatisfy { $0 >= p.minimumSize && $0 <= p.maximumSize })
        let mean = Double(256 << 20) / Double(lengths.count)
        #expect(abs(mean - Double(p.averageSize)) <= 0.15 * Double(p.averageSize), "mean \(mean)")
    }

    @Test(arguments: [1, 17, 64, 100])
    func insertingBytesNearTheStartKeepsMostChunks(inserted: Int) {
        var g = TestData(seed: 64)
        let original = g.bytes(64 << 20)
        var edited = original
        edited.insert(contentsOf: g.bytes(inserted), at: 5000)
        let a = chunksStreamed(original, .default, sizes: { 1 << 20 })
        let b = chunksStreamed(edited, .default, sizes: { 1 << 20 })
        let known = Set(a)
        let sharedBytes = b.filter { known.contains($0) }.reduce(0) { $0 + $1.count }
        #expect(Double(sharedBytes) >= 0.95 * Double(edited.count), "shared \(sharedBytes) of \(edited.count)")
    }

    @Test func differentSeedsGiveDifferentBoundaries() {
        var g = TestData(seed: 5)
        let data = g.bytes(16 << 20)
        let a = lengths(data, .default, seed: zeroSeed)
        let b = lengths(data, .default, seed: countingSeed)
        #expect(a != b)
        #expect(Set(cutOffsets(a)).intersection(cutOffsets(b)).count < a.count / 2)
    }
}

@Suite struct ParameterTests {
    @Test func defaultsAreValidAndDocumented() throws {
        try ChunkerParameters.default.validate()
        try ChunkerParameters.borg.validate()
        #expect(ChunkerParameters.default.threshold == UInt64.max / (768 << 10))
        #expect(ChunkerParameters.borg.threshold == 1 << 43)
    }

    @Test func badParametersAreRejectedWithReasons() {
        let cases: [(ChunkerParameters, String)] = [
            (.init(minimumSize: 32, averageSize: 64, maximumSize: 128, windowSize: 64), "at least the window"),
            (.init(minimumSize: 1024, averageSize: 1024, maximumSize: 4096, windowSize: 64), "larger than the minimum"),
            (.init(minimumSize: 1024, averageSize: 4096, maximumSize: 2048, windowSize: 64), "at least the average"),
            (.init(minimumSize: 1024, averageSize: 4096, maximumSize: 1 << 30, windowSize: 64), "exceeds"),
            (.init(minimumSize: 1024, averageSize: 4096, maximumSize: 8192, windowSize: 0), "window size"),
        ]
        for (p, fragment) in cases {
            #expect(throws: ChunkerError.self) { try p.validate() }
            do { try p.validate() } catch { #expect(error.description.contains(fragment), "\(error)") }
        }
        #expect(throws: ChunkerError.invalidSeed(length: 31)) { try Chunker(seed: [UInt8](repeating: 0, count: 31)) }
    }
}

@testable import Chunker

/// Deterministic test input: xorshift64* words, little-endian. The golden
/// vectors depend on this generator; do not change it.
struct TestData {
    private var state: UInt64

    init(seed: UInt64) { state = seed | 1 }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var w = next()
            for _ in 0..<8 where i < count {
                out[i] = UInt8(truncatingIfNeeded: w)
                w >>= 8
                i += 1
            }
        }
        return out
    }

    /// A number in 1...limit.
    mutating func upTo(_ limit: Int) -> Int { Int(next() % UInt64(limit)) + 1 }
}

let zeroSeed = [UInt8](repeating: 0, count: 32)
let countingSeed = (0..<32).map { UInt8($0) }

/// Small sizes so debug-build tests see many chunks in little data.
let smallParameters = ChunkerParameters(minimumSize: 2 << 10, averageSize: 8 << 10, maximumSize: 32 << 10, windowSize: 64)

func lengths(_ data: [UInt8], _ params: ChunkerParameters = .default, seed: [UInt8] = zeroSeed) -> [Int] {
    let chunker = try! Chunker(parameters: params, seed: seed)
    return data.withUnsafeBytes { chunker.chunkLengths(of: $0) }
}

/// Feeds `data` in pieces whose sizes come from `sizes` and collects the chunks.
func chunksStreamed(_ data: [UInt8], _ params: ChunkerParameters, seed: [UInt8] = zeroSeed,
                    sizes: () -> Int) -> [[UInt8]] {
    let chunker = try! Chunker(parameters: params, seed: seed)
    var chunks: [[UInt8]] = []
    var offset = 0
    data.withUnsafeBytes { raw in
        while offset < raw.count {
            let n = min(sizes(), raw.count - offset)
            chunker.feed(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + n])) { chunks.append(Array($0)) }
            offset += n
        }
    }
    chunker.finish { chunks.append(Array($0)) }
    return chunks
}

/// Cut offsets (end of each chunk) from lengths.
func cutOffsets(_ lengths: [Int]) -> [Int] {
    var total = 0
    return lengths.map { total += $0; return total }
}

/// The obvious, slow chunker: hashes the whole window at every position.
/// The fast loop must agree with it.
func referenceLengths(_ data: [UInt8], _ p: ChunkerParameters, seed: [UInt8]) -> [Int] {
    let table = try! BuzhashTable(seed: seed)
    let threshold = p.threshold
    var lengths: [Int] = []
    var start = 0
    while start < data.count {
        let remaining = data.count - start
        var cut = min(remaining, p.maximumSize)
        if remaining > p.minimumSize {
            var n = p.minimumSize
            while n <= min(remaining, p.maximumSize) {
                if table.hash(window: data[(start + n - p.windowSize)..<(start + n)]) < threshold {
                    cut = n
                    break
                }
                n += 1
            }
        } else if remaining == p.minimumSize,
                  table.hash(window: data[(start + p.minimumSize - p.windowSize)..<(start + p.minimumSize)]) < threshold {
            cut = p.minimumSize
        }
        lengths.append(cut)
        start += cut
    }
    return lengths
}

// Buzhash: a cyclic-polynomial rolling hash (Cohen 1997; Lemire & Kaser,
// "Recursive n-gram hashing is pairwise independent, at best", 2010), as
// used for content-defined chunking by BorgBackup (`_chunker.c`).
//
// Definition. With a 256-entry table T of 64-bit words and window w, the hash
// of the w bytes b[n-w] … b[n-1] ending at position n is
//
//     H(n) = rotl(T[b[n-w]], w-1) ^ rotl(T[b[n-w+1]], w-2) ^ … ^ rotl(T[b[n-1]], 0)
//
// and it rolls one byte at a time:
//
//     H(n+1) = rotl(H(n), 1) ^ rotl(T[b[n-w]], w) ^ T[b[n]]
//
// The second table, Tout[c] = rotl(T[c], w mod 64), is precomputed so the
// step is two loads, two xors and a rotate.
//
// Parameters and why:
//   - 64-bit words: with window 64 every byte in the window is rotated by a
//     different amount (0…63), so no two bytes of the window cancel. A 32-bit
//     buzhash with a window that is a multiple of 32 cancels identical bytes
//     32 apart ("rotate cancellation"): periodic data would then hash to 0.
//   - window 64: long enough that a cut depends on a stretch of content,
//     short enough to recover within 64 bytes after an edit.
//   - min 256 KiB / average 1 MiB / max 8 MiB: see ChunkerParameters and
//     FORMAT.md. Positions below the minimum are never tested, so the
//     hash is only started `w` bytes before the minimum.
//   - Cut test `H < threshold` (top bits all zero) instead of a low-bit mask:
//     every bit of a buzhash is equally mixed, and a threshold gives any
//     average size, not only min + 2^k.
//
// Weaknesses, known and accepted:
//   1. Buzhash is linear over GF(2): it is not a cryptographic hash. The
//      secret table (derived from the repository seed) is what keeps cut
//      points from fingerprinting content; chunk sizes are further hidden
//      inside encrypted packs.
//   2. Long runs of one byte value give a constant hash: such data is cut
//      either at every minimum or only at the maximum. Both are correct.
//   3. Windows longer than 64 (BorgBackup's 4095, used only for speed
//      comparison) reuse rotations, so bytes 64 apart can cancel.
//
// Contract: cut points are part of the format; see `BuzhashGoldenTests`.

/// The 256-word table of a buzhash, derived from a repository seed.
public struct BuzhashTable: Sendable, Hashable {
    /// T[c] for each byte value c.
    public let words: [UInt64]

    /// The domain-separation label mixed into the table derivation.
    static let label: [UInt8] = Array("fbk buzhash table v1".utf8)

    /// Derives the table from a 32-byte secret seed.
    ///
    /// T[c] = the first 8 bytes, little-endian, of
    /// SHA-256(seed || "fbk buzhash table v1" || byte(c)).
    /// - Throws: `ChunkerError.invalidSeed` unless the seed is 32 bytes.
    public init(seed: [UInt8]) throws(ChunkerError) {
        guard seed.count == 32 else { throw .invalidSeed(length: seed.count) }
        var words = [UInt64]()
        words.reserveCapacity(256)
        for c in 0..<256 {
            let digest = sha256(seed + Self.label + [UInt8(c)])
            var word: UInt64 = 0
            for i in 0..<8 { word |= UInt64(digest[i]) << (8 * UInt64(i)) }
            words.append(word)
        }
        self.words = words
    }

    /// The hash of `bytes` as a whole window (the definition, not the roll).
    public func hash<C: Collection>(window bytes: C) -> UInt64 where C.Element == UInt8 {
        var h: UInt64 = 0
        for b in bytes { h = rotl(h, 1) ^ words[Int(b)] }
        return h
    }
}

@inline(__always) func rotl(_ x: UInt64, _ n: UInt64) -> UInt64 { (x &<< n) | (x &>> (64 &- n)) }

/// The chunker's hot loop.
///
/// Scans a chunk whose bytes start at `base` and of which `available` bytes
/// are present, resuming at position `position` with hash `hash` (valid when
/// `position >= minimumSize`). Returns the chunk length if a cut is found, or
/// nil after updating `position` and `hash` when more bytes are needed.
///
/// Written for speed: raw pointers (no bounds checks, no ARC in the loop),
/// wrapping arithmetic (`&+`, `&<<`: no overflow traps, no "smart shifts").
/// The loop takes two bytes per step. H(n+2) is computed from H(n) as
/// rotl(H(n), 2) ^ x, with x = rotl(x0, 1) ^ x1, where x0 and x1 depend
/// only on input bytes; H(n+1) = rotl(H(n), 1) ^ x0 is a side branch used
/// only for the test. x0 and x for the next step are computed one step
/// ahead and carried into it: written inline, the compiler reassociates
/// rotl(H(n), 2) ^ rotl(x0, 1) ^ Tout[…] ^ T[…] into a chain of four
/// operations on H per step; carried, the chain is one rotate and one xor
/// (about 1.2x the throughput, see Benchmarks/README.md, "Third round").
@inline(__always)
func buzhashScan(
    base: UnsafePointer<UInt8>, available: Int,
    position: inout Int, hash: inout UInt64,
    table: UnsafePointer<UInt64>, outTable: UnsafePointer<UInt64>,
    minimumSize: Int, maximumSize: Int, windowSize w: Int, threshold: UInt64
) -> Int? {
    var pos = position
    var h = hash
    if pos < minimumSize {
        guard available >= minimumSize else {
            position = available
            return nil
        }
        // Start the hash over the window that ends at the minimum size.
        h = 0
        var i = minimumSize &- w
        while i < minimumSize {
            h = rotl(h, 1) ^ table[Int(base[i])]
            i &+= 1
        }
        pos = minimumSize
        if h < threshold {
            position = pos
            hash = h
            return pos
        }
    }
    let limit = available < maximumSize ? available : maximumSize
    // Two bytes per step, the next step's inputs loaded one step ahead,
    // while the next step's two bytes are there too.
    if pos &+ 3 < limit {
        var x0 = outTable[Int(base[pos &- w])] ^ table[Int(base[pos])]
        var x = rotl(x0, 1) ^ outTable[Int(base[pos &+ 1 &- w])] ^ table[Int(base[pos &+ 1])]
        while pos &+ 3 < limit {
            let h1 = rotl(h, 1) ^ x0
            let h2 = rotl(h, 2) ^ x
            let next0 = outTable[Int(base[pos &+ 2 &- w])] ^ table[Int(base[pos &+ 2])]
            let next1 = outTable[Int(base[pos &+ 3 &- w])] ^ table[Int(base[pos &+ 3])]
            // (h1 & h2) <= min(h1, h2), so this is a necessary condition for a
            // cut at either position, one test for two; false hits are rare.
            if (h1 & h2) < threshold {
                if h1 < threshold {
                    position = pos &+ 1
                    hash = h1
                    return pos &+ 1
                }
                if h2 < threshold {
                    position = pos &+ 2
                    hash = h2
                    return pos &+ 2
                }
            }
            h = h2
            pos &+= 2
            x0 = next0
            x = rotl(next0, 1) ^ next1
        }
    }
    // The last few bytes (at most three), one per step.
    while pos < limit {
        h = rotl(h, 1) ^ outTable[Int(base[pos &- w])] ^ table[Int(base[pos])]
        pos &+= 1
        if h < threshold {
            position = pos
            hash = h
            return pos
        }
    }
    position = pos
    hash = h
    if pos == maximumSize { return pos }
    return nil
}

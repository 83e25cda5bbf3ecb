/// The sizes that shape content-defined chunking.
///
/// Chunk boundaries are part of fbk's format: the same seed and parameters
/// must always give the same cut points (see FORMAT.md, "Chunking", and
/// `BuzhashGoldenTests`). Change the defaults only with a format version bump.
public struct ChunkerParameters: Sendable, Hashable, CustomStringConvertible {
    /// No chunk but the last of a stream is shorter than this.
    public var minimumSize: Int
    /// The expected mean chunk size on random data.
    public var averageSize: Int
    /// No chunk is longer than this; a chunk that reaches it is cut there.
    public var maximumSize: Int
    /// Bytes covered by the rolling hash.
    public var windowSize: Int

    /// fbk's defaults for daily incremental backups of servers: 256 KiB /
    /// 1 MiB / 8 MiB, window 64. See FORMAT.md for why.
    public static let `default` = ChunkerParameters(
        minimumSize: 256 << 10, averageSize: 1 << 20, maximumSize: 8 << 20, windowSize: 64)

    /// BorgBackup 1.x's defaults (`CHUNKER_PARAMS = 19, 23, 21, 4095`):
    /// min 2^19, max 2^23, a 21-bit mask (one cut per 2^21 candidate
    /// positions), window 4095. Used to compare speed with borg's chunker.
    public static let borg = ChunkerParameters(
        minimumSize: 1 << 19, averageSize: (1 << 19) + (1 << 21), maximumSize: 1 << 23, windowSize: 4095)

    /// Largest maximum size accepted: one chunk is held in memory at a time.
    public static let largestMaximumSize = 64 << 20

    public init(minimumSize: Int, averageSize: Int, maximumSize: Int, windowSize: Int) {
        self.minimumSize = minimumSize
        self.averageSize = averageSize
        self.maximumSize = maximumSize
        self.windowSize = windowSize
    }

    /// Checks that the sizes can work together.
    /// - Throws: `ChunkerError.invalidParameters` naming the size at fault.
    public func validate() throws(ChunkerError) {
        guard windowSize >= 1 && windowSize <= 65_536 else {
            throw .invalidParameters("window size \(windowSize) must be between 1 and 65536 bytes")
        }
        guard minimumSize >= windowSize else {
            throw .invalidParameters("minimum size \(minimumSize) must be at least the window size \(windowSize)")
        }
        guard averageSize > minimumSize else {
            throw .invalidParameters("average size \(averageSize) must be larger than the minimum size \(minimumSize)")
        }
        guard maximumSize >= averageSize else {
            throw .invalidParameters("maximum size \(maximumSize) must be at least the average size \(averageSize)")
        }
        guard maximumSize <= Self.largestMaximumSize else {
            throw .invalidParameters("maximum size \(maximumSize) exceeds \(Self.largestMaximumSize) bytes")
        }
    }

    /// The cut threshold: a position ends a chunk when the 64-bit rolling hash
    /// is below it, which happens with probability 1 / (average − minimum) per
    /// position, so chunks average `averageSize` bytes (FORMAT.md gives the
    /// formula; it is exact for powers of two and floor-rounded otherwise).
    public var threshold: UInt64 {
        let span = UInt64(averageSize - minimumSize)
        if span == 1 { return .max }  // every position cuts (2^64 does not fit)
        // floor(2^64 / span), computed without overflow.
        let (q, r) = UInt64.max.quotientAndRemainder(dividingBy: span)
        return r + 1 == span ? q + 1 : q
    }

    public var description: String {
        "min \(minimumSize) avg \(averageSize) max \(maximumSize) window \(windowSize)"
    }
}

/// Errors from the chunker.
public enum ChunkerError: Error, Equatable, CustomStringConvertible {
    /// The parameters cannot work together; the text says which one to change.
    case invalidParameters(String)
    /// The seed is not 32 bytes.
    case invalidSeed(length: Int)

    public var description: String {
        switch self {
        case .invalidParameters(let why): "invalid chunker parameters: \(why)"
        case .invalidSeed(let n): "chunker seed must be 32 bytes, got \(n)"
        }
    }
}

// Chunker: content-defined chunking of a byte stream.
//
// Feed the stream in buffers of any size; complete chunks come back through
// a closure, with the same boundaries whatever the buffer sizes were. The
// chunker copies input only for a chunk that spans two buffers, gathering it
// in an array of its own (at most `maximumSize` bytes) that it then hands
// over, so a caller that keeps chunks need not copy it again: memory is
// bounded by one chunk being gathered.

import FoundationEssentials
import Glibc

/// A streaming content-defined chunker (buzhash, see `Buzhash.swift`).
///
/// Not thread-safe: one chunker serves one stream at a time. Reuse it for
/// the next stream after `finish`.
public final class Chunker {
    /// The sizes this chunker cuts with.
    public let parameters: ChunkerParameters
    private let threshold: UInt64
    /// T followed by Tout (256 + 256 words), owned, freed in deinit.
    private let tables: UnsafeMutablePointer<UInt64>
    /// The bytes gathered so far of a chunk that began in an earlier buffer
    /// (or of the stream's last chunk).
    private var pending: [UInt8] = []
    /// A gathered chunk's array that the copying `feed` and `finish` gave
    /// back, reused for the next chunk that spans buffers.
    private var spare: [UInt8] = []
    /// Scan state, relative to the start of the current chunk.
    private var position = 0
    private var hash: UInt64 = 0
    /// How much of a buffer is appended to `pending` before each rescan.
    private static let appendStep = 64 << 10

    /// Creates a chunker.
    /// - Parameters:
    ///   - parameters: the sizes; `.default` unless a repository says otherwise.
    ///   - table: the buzhash table derived from the repository seed.
    /// - Throws: `ChunkerError.invalidParameters` if the sizes do not fit together.
    public init(parameters: ChunkerParameters = .default, table: BuzhashTable) throws(ChunkerError) {
        try parameters.validate()
        self.parameters = parameters
        self.threshold = parameters.threshold
        tables = .allocate(capacity: 512)
        let outRotation = UInt64(parameters.windowSize % 64)
        for c in 0..<256 {
            tables[c] = table.words[c]
            tables[256 + c] = rotl(table.words[c], outRotation)
        }
    }

    /// Creates a chunker from a 32-byte repository seed.
    /// - Throws: `ChunkerError` for a bad seed or bad sizes.
    public convenience init(parameters: ChunkerParameters = .default, seed: [UInt8]) throws(ChunkerError) {
        try self.init(parameters: parameters, table: BuzhashTable(seed: seed))
    }

    deinit { tables.deallocate() }

    /// Feeds the next bytes of the stream.
    /// - Parameters:
    ///   - data: the bytes; any length, including zero.
    ///   - emit: called with each chunk completed, in order. The buffer is
    ///     valid only during the call.
    public func feed(_ data: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try feed(data, emit: emit, emitGathered: { chunk in
            try chunk.withUnsafeBytes { try emit($0) }
            spare = chunk
        })
    }

    /// Feeds the next bytes of the stream, handing over without a copy the
    /// chunks the chunker had to gather because they spanned buffers.
    /// - Parameters:
    ///   - emit: called with each chunk that lies within `data`, valid only
    ///     during the call.
    ///   - emitGathered: called, in the same order, with each chunk that
    ///     began in an earlier buffer, as an array the caller may keep.
    public func feed(_ data: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void,
                     emitGathered: ([UInt8]) throws -> Void) rethrows {
        guard let start = data.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var offset = 0
        while offset < data.count {
            if !pending.isEmpty {
                // The current chunk began in an earlier buffer: grow it in steps
                // so that little is copied past the cut.
                let room = parameters.maximumSize - pending.count
                let take = min(data.count - offset, room, Self.appendStep)
                // Room for the longest chunk, reserved once the chunk is seen
                // to span buffers (untouched pages cost no memory).
                if pending.capacity < parameters.maximumSize { pending.reserveCapacity(parameters.maximumSize) }
                pending.append(contentsOf: UnsafeBufferPointer(start: start + offset, count: take))
                offset += take
                let cut = pending.withUnsafeBufferPointer { scan($0.baseAddress!, available: $0.count) }
                if let cut {
                    offset -= pending.count - cut  // the bytes past the cut are still in `data`
                    pending.removeSubrange(cut...)
                    position = 0
                    var chunk: [UInt8] = []
                    swap(&chunk, &pending)
                    try emitGathered(chunk)
                }
            } else {
                let base = start + offset
                let available = data.count - offset
                if let cut = scan(base, available: available) {
                    try emit(UnsafeRawBufferPointer(start: base, count: cut))
                    offset += cut
                    position = 0
                } else {
                    // The chunk goes on in the next buffer. Scan state is
                    // relative to the chunk start, so it stays valid.
                    if spare.capacity >= parameters.maximumSize {
                        swap(&pending, &spare)
                        pending.removeAll(keepingCapacity: true)
                        pending.append(contentsOf: UnsafeBufferPointer(start: base, count: available))
                    } else {
                        // Exactly its size: a small file's only chunk is handed over as it is.
                        pending = Array(UnsafeBufferPointer(start: base, count: available))
                    }
                    offset = data.count
                }
            }
        }
    }

    /// Feeds bytes from any contiguous collection.
    public func feed<D: ContiguousBytes>(_ data: D, emit: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try data.withUnsafeBytes { try feed($0, emit: emit) }
    }

    /// Ends the stream: emits the last chunk (shorter than the minimum, maybe)
    /// if any bytes remain, and resets the chunker for a new stream.
    public func finish(emit: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try finishGathered { chunk in
            try chunk.withUnsafeBytes { try emit($0) }
            spare = chunk
        }
    }

    /// Ends the stream like `finish`, handing the last chunk over as an array.
    public func finishGathered(_ emitGathered: ([UInt8]) throws -> Void) rethrows {
        var chunk: [UInt8] = []
        swap(&chunk, &pending)
        reset()
        if !chunk.isEmpty { try emitGathered(chunk) }
    }

    /// Forgets any partial chunk and starts a new stream.
    public func reset() {
        pending = []
        position = 0
        hash = 0
    }

    /// The chunk lengths of one whole stream held in memory.
    public func chunkLengths(of data: UnsafeRawBufferPointer) -> [Int] {
        reset()
        var lengths: [Int] = []
        feed(data) { lengths.append($0.count) }
        finish { lengths.append($0.count) }
        return lengths
    }

    @inline(__always)
    private func scan(_ base: UnsafePointer<UInt8>, available: Int) -> Int? {
        buzhashScan(
            base: base, available: available, position: &position, hash: &hash,
            table: tables, outTable: tables + 256,
            minimumSize: parameters.minimumSize, maximumSize: parameters.maximumSize,
            windowSize: parameters.windowSize, threshold: threshold)
    }
}

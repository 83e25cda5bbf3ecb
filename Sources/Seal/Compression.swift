// zstd compression through libzstd: one frame per chunk for packs, and a
// streaming form with bounded memory for large inputs.

internal import CZstd

/// How a chunk's bytes are stored.
public enum StorageForm: UInt8, Sendable {
    /// The plaintext as is: it did not get smaller under zstd.
    case stored = 0
    /// One zstd frame.
    case zstd = 1
}

/// zstd levels fbk accepts (libzstd's 1…19; negative "fast" levels are not used).
public let compressionLevels: ClosedRange<Int32> = 1...19
/// fbk's default level.
public let defaultCompressionLevel: Int32 = 3

private func zstdError(_ code: Int, _ what: String) -> SealError? {
    guard ZSTD_isError(code) != 0 else { return nil }
    return SealError(.library, "\(what) failed", detail: String(cString: ZSTD_getErrorName(code)))
}

/// Compresses chunks, one zstd frame each, reusing one context.
/// Not thread-safe: use one per thread.
public final class ChunkCompressor {
    private let context: OpaquePointer
    /// For `looksCompressible`'s samples (small, fast level).
    fileprivate let probe: OpaquePointer
    public let level: Int32

    /// - Throws: `SealError.invalidArgument` for a level outside 1…19.
    public init(level: Int32 = defaultCompressionLevel) throws(SealError) {
        guard compressionLevels.contains(level) else {
            throw SealError(.invalidArgument, "compression level \(level) is outside \(compressionLevels)")
        }
        guard let ctx = ZSTD_createCCtx() else { throw SealError(.library, "ZSTD_createCCtx: out of memory") }
        guard let probe = ZSTD_createCCtx() else {
            ZSTD_freeCCtx(ctx)
            throw SealError(.library, "ZSTD_createCCtx: out of memory")
        }
        context = ctx
        self.probe = probe
        self.level = level
        if let e = zstdError(ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level), "setting the zstd level") {
            ZSTD_freeCCtx(ctx)
            ZSTD_freeCCtx(probe)
            throw e
        }
        // A content checksum would duplicate the chunk ID check on restore.
        _ = ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 0)
    }

    deinit {
        ZSTD_freeCCtx(context)
        ZSTD_freeCCtx(probe)
    }

    /// Compresses `input`; returns `.stored` with the input itself when zstd
    /// would not make it smaller, so nothing is ever expanded.
    public func compress(_ input: UnsafeRawBufferPointer) throws(SealError) -> (form: StorageForm, bytes: [UInt8]) {
        if let out = try compressedIfSmaller(input) { return (.zstd, out) }
        return (.stored, Array(input))
    }

    /// The zstd frame of `input`, or nil when it would not be smaller (the
    /// caller then stores the input as it is, without a copy made here).
    /// A chunk of 256 KiB or more is first sampled (`looksCompressible`):
    /// if no sample shrinks it is taken as incompressible without trying,
    /// which misses only data that shrinks through repeats farther apart
    /// than a sample while no 2 KiB of it shrinks alone.
    /// The corresponding C function is `ZSTD_compress2`.
    public func compressedIfSmaller(_ input: UnsafeRawBufferPointer) throws(SealError) -> [UInt8]? {
        guard looksCompressible(input) else { return nil }
        var result = 0
        let out = [UInt8](unsafeUninitializedCapacity: ZSTD_compressBound(input.count)) { o, count in
            result = ZSTD_compress2(context, o.baseAddress, o.count, input.baseAddress, input.count)
            count = ZSTD_isError(result) != 0 ? 0 : result
        }
        if let e = zstdError(result, "zstd compression") { throw e }
        return result < input.count ? out : nil
    }
}

extension ChunkCompressor {
    /// Bytes sampled from every `probeStride` of a large chunk.
    static let probeSample = 2048
    static let probeStride = 64 << 10
    /// A sample is compressible when its frame is at most this fraction of it.
    static let probeRatio = 0.97

    /// Whether any sample of a large chunk shrinks under zstd. Random data
    /// would otherwise fill an output buffer as large as itself only to be
    /// stored as it is: on two workers, up to twice the largest chunk of
    /// transient memory. A compressible stretch of 66 KiB or more always
    /// holds a whole sample, so little that would shrink is stored as it is.
    func looksCompressible(_ input: UnsafeRawBufferPointer) -> Bool {
        guard input.count >= 4 * Self.probeStride else { return true }
        return withUnsafeTemporaryAllocation(byteCount: ZSTD_compressBound(Self.probeSample), alignment: 8) { out in
            var offset = 0
            while offset + Self.probeSample <= input.count {
                let n = ZSTD_compressCCtx(probe, out.baseAddress, out.count, input.baseAddress! + offset, Self.probeSample, 1)
                if ZSTD_isError(n) == 0 && Double(n) <= Double(Self.probeSample) * Self.probeRatio { return true }
                offset += Self.probeStride
            }
            return false
        }
    }
}

/// Restores chunks compressed by `ChunkCompressor`.
public final class ChunkDecompressor {
    private let context: OpaquePointer

    public init() {
        guard let ctx = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx: out of memory") }
        context = ctx
    }

    deinit { ZSTD_freeDCtx(context) }

    /// The plaintext of a stored chunk.
    /// - Parameters:
    ///   - plainLength: the length the chunk must have; anything else is an
    ///     error, and no more than this is ever allocated.
    /// - Throws: `SealError.corruptCompressedData` if the data is invalid or
    ///   does not decompress to exactly `plainLength` bytes.
    public func decompress(_ stored: [UInt8], form: StorageForm, plainLength: Int) throws(SealError) -> [UInt8] {
        // A stored chunk is its own plaintext: no second copy of up to the largest chunk.
        if form == .stored && stored.count == plainLength { return stored }
        return try stored.withUnsafeBytes { p in
            Result { () throws(SealError) in try decompress(p, form: form, plainLength: plainLength) }
        }.get()
    }

    /// The plaintext of a stored chunk, from borrowed bytes.
    public func decompress(_ input: UnsafeRawBufferPointer, form: StorageForm, plainLength: Int) throws(SealError) -> [UInt8] {
        switch form {
        case .stored:
            guard input.count == plainLength else {
                throw SealError(.corruptCompressedData, "stored chunk is \(input.count) bytes, expected \(plainLength)")
            }
            return Array(input)
        case .zstd:
            let declared = ZSTD_getFrameContentSize(input.baseAddress, input.count)
            if declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != UInt64(plainLength) {
                throw SealError(.corruptCompressedData,
                                "zstd frame declares \(declared) bytes, expected \(plainLength)")
            }
            // One spare byte tells "too long" apart from "exactly right".
            // Not zero-filled first: zstd writes every byte it reports, and
            // only those are kept (a restore's writers spent 2 % of their
            // time clearing buffers they then overwrote).
            var n = 0
            let out = [UInt8](unsafeUninitializedCapacity: plainLength + 1) { o, initialized in
                n = ZSTD_decompressDCtx(context, o.baseAddress, o.count, input.baseAddress, input.count)
                initialized = ZSTD_isError(n) != 0 ? 0 : min(n, plainLength)
            }
            if ZSTD_isError(n) != 0 {
                throw SealError(.corruptCompressedData, "zstd data is corrupt",
                                detail: String(cString: ZSTD_getErrorName(n)))
            }
            guard n == plainLength else {
                throw SealError(.corruptCompressedData, "zstd data decompressed to \(n) bytes, expected \(plainLength)")
            }
            return out
        }
    }
}

/// Streaming zstd compression with bounded memory: feed any amount, get
/// compressed bytes through a closure. The corresponding C function is
/// `ZSTD_compressStream2`.
public final class StreamCompressor {
    private let context: OpaquePointer
    private var output: [UInt8]

    public init(level: Int32 = defaultCompressionLevel) throws(SealError) {
        guard compressionLevels.contains(level) else {
            throw SealError(.invalidArgument, "compression level \(level) is outside \(compressionLevels)")
        }
        guard let ctx = ZSTD_createCCtx() else { throw SealError(.library, "ZSTD_createCCtx: out of memory") }
        context = ctx
        _ = ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level)
        _ = ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 1)
        output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
    }

    deinit { ZSTD_freeCCtx(context) }

    public func compress(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(input, end: false, emit: emit)
    }

    /// Ends the frame and emits what remains.
    public func finish(emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(UnsafeRawBufferPointer(start: nil, count: 0), end: true, emit: emit)
    }

    private func run(_ input: UnsafeRawBufferPointer, end: Bool, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let capacity = output.count
        try output.withUnsafeMutableBytes { out in
            while true {
                var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
                let remaining = ZSTD_compressStream2(context, &outBuffer, &inBuffer, end ? ZSTD_e_end : ZSTD_e_continue)
                if let e = zstdError(remaining, "zstd stream compression") { throw e }
                if outBuffer.pos > 0 { try emit(UnsafeRawBufferPointer(rebasing: out[0..<outBuffer.pos])) }
                if end ? remaining == 0 : inBuffer.pos == inBuffer.size { break }
            }
        }
    }
}

/// Streaming zstd decompression with bounded memory.
public final class StreamDecompressor {
    private let context: OpaquePointer
    private var output: [UInt8]
    private var lastHint = 0

    public init() {
        guard let ctx = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx: out of memory") }
        context = ctx
        // At most 128 MiB of window, whatever a damaged frame claims.
        _ = ZSTD_DCtx_setParameter(ctx, ZSTD_d_windowLogMax, 27)
        output = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
    }

    deinit { ZSTD_freeDCtx(context) }

    public func decompress(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let capacity = output.count
        try output.withUnsafeMutableBytes { out in
            repeat {
                var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
                let consumedBefore = inBuffer.pos
                let hint = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                if ZSTD_isError(hint) != 0 {
                    throw SealError(.corruptCompressedData, "zstd stream is corrupt",
                                    detail: String(cString: ZSTD_getErrorName(hint)))
                }
                // A call that moved nothing (e.g. a final flush at a frame's end)
                // says nothing new about where the stream stands.
                if inBuffer.pos != consumedBefore || outBuffer.pos > 0 { lastHint = hint }
                if outBuffer.pos > 0 { try emit(UnsafeRawBufferPointer(rebasing: out[0..<outBuffer.pos])) }
                if inBuffer.pos == inBuffer.size && outBuffer.pos < capacity { break }
            } while true
        }
    }

    /// Checks that the stream ended at the end of a frame.
    public func finish() throws(SealError) {
        guard lastHint == 0 else {
            throw SealError(.corruptCompressedData, "zstd stream ends in the middle of a frame (truncated)")
        }
    }
}

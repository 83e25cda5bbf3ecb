// Push-mode sealing: content is written in pieces as it is produced and
// leaves encrypted, so a pack is never held whole in memory. The object is
// the same AuthEnvelopedData (BER, indefinite lengths) as `Envelope.seal`.

internal import COpenSSL
import FoundationEssentials
import Glibc

/// One object being sealed into a file (or, for `Envelope.seal`, into
/// memory). Nothing appears at the path until `finish` succeeds; dropping
/// the stream unfinished removes the temporary. After a failed write the
/// stream refuses everything but `abandon`: the object would lack bytes.
public final class SealingStream {
    public var path: String { file?.path ?? "(memory)" }
    /// Plaintext bytes written so far.
    public private(set) var count = 0
    /// Where the sealed bytes go: a file, or a memory BIO.
    private let file: OutputFile?
    /// The memory sink, owned here (a file's BIO is the file's).
    private let memory: OwnedBIO?
    private let sink: OpaquePointer
    private let cms: ContentInfo
    /// The first failure; every later call throws it again.
    private var failure: SealError?
    /// The chain from `BIO_new_CMS`, with a buffer after the cipher: writes
    /// go through encryption and the BER encoder into the file's buffer.
    private var chain: OpaquePointer?

    /// Seals into the file at `path`.
    convenience init(envelope: Envelope, path: String) throws(SealError) {
        let file = try OutputFile(path: path, hashing: true)
        try self.init(envelope: envelope, file: file, sink: file.bio)
    }

    /// Seals into memory (`finishInMemory`).
    convenience init(envelope: Envelope) throws(SealError) {
        guard let memory = BIO_new(BIO_s_mem()) else { throw SealError.openSSL(.library, "out of memory for a sealing stream") }
        try self.init(envelope: envelope, file: nil, memory: OwnedBIO(memory))
    }

    /// Seals into `file`, or into `memory`; the owners free what this
    /// does not take over, whichever way it ends.
    /// The corresponding C function is `BIO_new_CMS`.
    private init(envelope: Envelope, file: OutputFile?, sink fileSink: OpaquePointer? = nil, memory: OwnedBIO? = nil) throws(SealError) {
        self.file = file
        self.memory = memory
        sink = fileSink ?? memory!.pointer
        do throws(SealError) {
            cms = try envelope.contentInfo()
        } catch {
            file?.abandon()
            throw error
        }
        guard let chain = BIO_new_CMS(sink, cms.pointer) else {
            file?.abandon()
            throw SealError.openSSL(.library, "BIO_new_CMS failed")
        }
        self.chain = chain
        // The cipher passes on 4 KiB at a time and the BER encoder makes each
        // write an OCTET STRING with a 4-byte header: 0.1 % of every pack.
        // A buffer between them makes the pieces 256 KiB.
        guard let buffer = BIO_new(BIO_f_buffer()) else {
            releaseChain()
            file?.abandon()
            throw SealError.openSSL(.library, "cannot set up the sealing stream's buffer")
        }
        guard BIO_int_ctrl(buffer, BIO_C_SET_BUFF_SIZE, Int(Self.pieceSize), 1) == 1,  // 1: the write buffer
              let encoder = BIO_pop(chain) else {
            BIO_free(buffer)
            releaseChain()
            file?.abandon()
            throw SealError.openSSL(.library, "cannot set up the sealing stream's buffer")
        }
        BIO_push(buffer, encoder)
        BIO_push(chain, buffer)
    }

    /// The size of the content's OCTET STRING pieces (FORMAT.md 5.2).
    static let pieceSize: Int32 = 256 << 10

    deinit { abandon() }

    /// Encrypts and writes `bytes`.
    /// - Throws: the write's failure; after one, every call throws it again.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(SealError) {
        if let failure { throw failure }
        guard let chain else { throw SealError(.invalidArgument, "write to a finished or abandoned sealing stream") }
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, Int(Int32.max))
            let written = BIO_write(chain, bytes.baseAddress! + offset, Int32(n))
            guard written > 0 else {
                let cause = errno
                let error = file.map { SealError(.io, "cannot write \($0.temporary): \(String(cString: strerror(cause)))") }
                    ?? SealError.openSSL(.library, "cannot seal in memory")
                failure = error
                throw error
            }
            offset += Int(written)
        }
        count += bytes.count
    }

    public func write(_ bytes: [UInt8]) throws(SealError) {
        try bytes.withUnsafeBytes { b in Result { () throws(SealError) in try write(b) } }.get()
    }

    /// Ends the content (writing the GCM tag), syncs the file and moves it
    /// into place.
    /// - Returns: the size and SHA-256 of the sealed object, as written.
    public func finish() throws(SealError) -> (size: Int, sha256: Digest) {
        guard let file else { preconditionFailure("a sealing stream in memory ends with finishInMemory") }
        try end()
        let (size, sha256) = try file.commit()
        guard let sha256 else { throw SealError(.library, "the sealed file \(file.path) was not hashed") }
        return (size, sha256)
    }

    /// Ends the content of a stream sealing into memory; the sealed object.
    func finishInMemory() throws(SealError) -> [UInt8] {
        precondition(file == nil, "a sealing stream into a file ends with finish")
        try end()
        var p: UnsafeMutablePointer<CChar>?
        let n = COpenSSL_BIO_get_mem_data(sink, &p)
        return [UInt8](UnsafeRawBufferPointer(start: p, count: n))
    }

    /// Flushes the content through the cipher and encoder (the GCM tag last).
    private func end() throws(SealError) {
        if let failure {
            abandon()
            throw failure
        }
        guard let chain else { throw SealError(.invalidArgument, "the sealing stream was finished or abandoned already") }
        let flushed = COpenSSL_BIO_flush(chain) == 1
        let cause = errno
        releaseChain()
        guard flushed else {
            guard let file else { throw SealError.openSSL(.library, "cannot finish sealing in memory") }
            file.abandon()
            throw SealError(.io, "cannot finish \(file.temporary): \(String(cString: strerror(cause)))")
        }
    }

    /// Stops, removing the temporary file.
    public func abandon() {
        if chain != nil { releaseChain() }
        file?.abandon()
    }

    /// Frees the filters `BIO_new_CMS` pushed in front of the file's BIO.
    private func releaseChain() {
        var b = chain
        while let current = b, current != sink {
            b = BIO_pop(current)
            BIO_free(current)
        }
        chain = nil
    }
}

extension Envelope {
    /// Starts sealing an object into `path`, written in pieces.
    public func sealingStream(to path: String) throws(SealError) -> SealingStream {
        try SealingStream(envelope: self, path: path)
    }
}

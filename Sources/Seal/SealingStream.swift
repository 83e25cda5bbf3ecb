// Push-mode sealing: content is written in pieces as it is produced and
// leaves encrypted, so a pack is never held whole in memory. The object is
// the same AuthEnvelopedData (BER, indefinite lengths) as `Envelope.seal`.

internal import COpenSSL
import Foundation

/// One object being sealed into a file. Nothing appears at the path until
/// `finish` succeeds; dropping the stream unfinished removes the temporary.
public final class SealingStream {
    public var path: String { file.path }
    /// Plaintext bytes written so far.
    public private(set) var count = 0
    private let file: OutputFile
    private let cms: OpaquePointer
    /// The chain from `BIO_new_CMS`, with a buffer after the cipher: writes
    /// go through encryption and the BER encoder into the file's buffer.
    private var chain: OpaquePointer?

    /// The corresponding C function is `BIO_new_CMS`.
    init(envelope: Envelope, path: String) throws(SealError) {
        cms = try envelope.contentInfo()
        do throws(SealError) {
            file = try OutputFile(path: path)
        } catch {
            CMS_ContentInfo_free(cms)
            throw error
        }
        guard let chain = BIO_new_CMS(file.bio, cms) else {
            file.abandon()
            CMS_ContentInfo_free(cms)
            throw SealError.openSSL(.library, "BIO_new_CMS failed")
        }
        self.chain = chain
        // The cipher passes on 4 KiB at a time and the BER encoder makes each
        // write an OCTET STRING with a 4-byte header: 0.1 % of every pack.
        // A buffer between them makes the pieces 256 KiB.
        guard let buffer = BIO_new(BIO_f_buffer()) else {
            releaseChain()
            file.abandon()
            throw SealError.openSSL(.library, "cannot set up the sealing stream's buffer")
        }
        guard BIO_int_ctrl(buffer, BIO_C_SET_BUFF_SIZE, Int(Self.pieceSize), 1) == 1,  // 1: the write buffer
              let encoder = BIO_pop(chain) else {
            BIO_free(buffer)
            releaseChain()
            file.abandon()
            throw SealError.openSSL(.library, "cannot set up the sealing stream's buffer")
        }
        BIO_push(buffer, encoder)
        BIO_push(chain, buffer)
    }

    /// The size of the content's OCTET STRING pieces (FORMAT.md 5.2).
    static let pieceSize: Int32 = 256 << 10

    deinit { abandon() }

    /// Encrypts and writes `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(SealError) {
        guard let chain else { throw SealError(.invalidArgument, "write to a finished sealing stream") }
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, Int(Int32.max))
            let written = BIO_write(chain, bytes.baseAddress! + offset, Int32(n))
            guard written > 0 else {
                let cause = errno
                throw SealError(.io, "cannot write \(file.temporary): \(String(cString: strerror(cause)))")
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
    /// - Returns: the size and SHA-256 of the sealed object.
    public func finish() throws(SealError) -> (size: Int, sha256: Digest) {
        guard let chain else { throw SealError(.invalidArgument, "sealing stream finished twice") }
        let flushed = COpenSSL_BIO_flush(chain) == 1
        let cause = errno
        releaseChain()
        guard flushed else {
            file.abandon()
            throw SealError(.io, "cannot finish \(file.temporary): \(String(cString: strerror(cause)))")
        }
        try file.commit()
        let (digest, size) = try SHA256.hash(fileAt: file.path)
        return (size, digest)
    }

    /// Stops, removing the temporary file.
    public func abandon() {
        if chain != nil { releaseChain() }
        file.abandon()
    }

    /// Frees the filters `BIO_new_CMS` pushed in front of the file's BIO.
    private func releaseChain() {
        var b = chain
        while let current = b, current != file.bio {
            b = BIO_pop(current)
            BIO_free(current)
        }
        chain = nil
        CMS_ContentInfo_free(cms)
    }
}

extension Envelope {
    /// Starts sealing an object into `path`, written in pieces.
    public func sealingStream(to path: String) throws(SealError) -> SealingStream {
        try SealingStream(envelope: self, path: path)
    }
}

// Bounded-memory decryption of large DER/BER CMS objects.
//
// OpenSSL's d2i_CMS_bio reads a whole object into memory (about four times
// its size at peak), which a large device blob cannot afford. Instead, this
// walks the BER structure of the file once, notes where the encrypted
// content's pieces lie, and hands OpenSSL a copy of the object with the
// content left out ("detached"); the content is then streamed from the file
// through OpenSSL's cipher BIO. AES-GCM's tag is still checked at the end,
// and the caller writes through a temporary file, so nothing unauthenticated
// is kept.

internal import COpenSSL
import FoundationEssentials
import Glibc

/// Reads a file sequentially with a small buffer, tracking the offset.
final class BERFileReader {
    private let file: ReadOnlyFile
    private var buffer: [UInt8] = []
    private var bufferStart = 0   // file offset of buffer[0]
    private var position = 0      // file offset of the next byte
    let path: String

    init(path: String) throws(SealError) {
        guard let f = ReadOnlyFile(path: path) else { throw SealError(.io, "cannot open \(path)") }
        file = f
        self.path = path
    }

    var offset: Int { position }

    func byte() throws(SealError) -> UInt8 {
        if position - bufferStart >= buffer.count {
            bufferStart = position
            buffer = file.read(at: position, upTo: 64 << 10) ?? []
            guard !buffer.isEmpty else { throw truncated() }
        }
        let b = buffer[position - bufferStart]
        position += 1
        return b
    }

    func bytes(_ count: Int) throws(SealError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(try byte()) }
        return out
    }

    func seek(to offset: Int) { position = offset }

    func truncated() -> SealError {
        SealError(.truncatedObject, "the object ends before its end: it is truncated or damaged (an incomplete upload?)")
    }
}

/// One BER header: tag byte(s), and the content length (nil: indefinite).
struct BERHeader {
    var tag: UInt8
    var length: Int?
    var headerLength: Int
    var constructed: Bool { tag & 0x20 != 0 }
    var isEndOfContents: Bool { tag == 0 && length == 0 }

    static func read(_ r: BERFileReader) throws(SealError) -> BERHeader {
        let start = r.offset
        let tag = try r.byte()
        guard tag & 0x1F != 0x1F else { throw SealError(.malformedObject, "unsupported multi-byte BER tag") }
        let first = try r.byte()
        var length: Int?
        if first < 0x80 {
            length = Int(first)
        } else if first == 0x80 {
            length = nil
        } else {
            let n = Int(first & 0x7F)
            guard n <= 6 else { throw SealError(.malformedObject, "BER length of \(n) bytes is too large") }
            var v = 0
            for _ in 0..<n { v = v << 8 | Int(try r.byte()) }
            length = v
        }
        return BERHeader(tag: tag, length: length, headerLength: r.offset - start)
    }
}

enum StreamingOpen {
    /// Largest element copied into memory (recipient infos, attributes, tag).
    static let elementLimit = 4 << 20

    /// Skips one element (header already read); returns its content's end offset.
    static func skipContent(_ h: BERHeader, _ r: BERFileReader) throws(SealError) {
        if let length = h.length {
            r.seek(to: r.offset + length)
        } else {
            guard h.constructed else { throw SealError(.malformedObject, "indefinite length on a primitive element") }
            while true {
                let child = try BERHeader.read(r)
                if child.isEndOfContents { return }
                try skipContent(child, r)
            }
        }
    }

    /// The raw bytes of the next element.
    static func rawElement(_ r: BERFileReader) throws(SealError) -> (BERHeader, [UInt8]) {
        let start = r.offset
        let h = try BERHeader.read(r)
        try skipContent(h, r)
        let end = r.offset
        guard end - start <= elementLimit else {
            throw SealError(.malformedObject, "a CMS header element of \(end - start) bytes is implausibly large")
        }
        r.seek(to: start)
        let bytes = try r.bytes(end - start)
        return (h, bytes)
    }

    /// Collects the primitive pieces of the encrypted content (offset, length).
    static func contentPieces(_ h: BERHeader, _ r: BERFileReader, into pieces: inout [(Int, Int)]) throws(SealError) {
        if !h.constructed {
            guard let length = h.length else { throw SealError(.malformedObject, "indefinite primitive content") }
            pieces.append((r.offset, length))
            r.seek(to: r.offset + length)
            return
        }
        let end = h.length.map { r.offset + $0 }
        while true {
            if let end, r.offset >= end { return }
            let child = try BERHeader.read(r)
            if end == nil && child.isEndOfContents { return }
            try contentPieces(child, r, into: &pieces)
        }
    }

    static func der(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var out = [tag]
        let n = content.count
        if n < 0x80 {
            out.append(UInt8(n))
        } else {
            var bytes: [UInt8] = []
            var v = n
            while v > 0 { bytes.insert(UInt8(v & 0xFF), at: 0); v >>= 8 }
            out.append(0x80 | UInt8(bytes.count))
            out += bytes
        }
        return out + content
    }

    /// Splits a DER/BER CMS file into a detached-content object (in memory,
    /// small) and the list of the content's pieces in the file.
    static func split(path: String) throws(SealError) -> (header: [UInt8], pieces: [(Int, Int)]) {
        let r = try BERFileReader(path: path)
        let outer = try BERHeader.read(r)
        guard outer.tag == 0x30 else { throw SealError(.malformedObject, "not an encrypted CMS object (DER, PEM or S/MIME)") }
        let (_, contentType) = try rawElement(r)
        let explicit = try BERHeader.read(r)
        guard explicit.tag == 0xA0 else { throw SealError(.malformedObject, "CMS ContentInfo without content") }
        let body = try BERHeader.read(r)
        guard body.tag == 0x30 else { throw SealError(.malformedObject, "CMS content is not a SEQUENCE") }
        let bodyEnd = body.length.map { r.offset + $0 }
        var elements: [[UInt8]] = []
        var pieces: [(Int, Int)] = []
        var sawContentInfo = false
        while true {
            if let bodyEnd, r.offset >= bodyEnd { break }
            let start = r.offset
            let h = try BERHeader.read(r)
            if bodyEnd == nil && h.isEndOfContents { break }
            // The encrypted-content info: the first SEQUENCE after the SET of recipients.
            if h.tag == 0x30 && !sawContentInfo && elements.contains(where: { $0.first == 0x31 }) {
                sawContentInfo = true
                let infoEnd = h.length.map { r.offset + $0 }
                let (_, innerType) = try rawElement(r)
                let (_, algorithm) = try rawElement(r)
                var rest: [UInt8] = []
                while true {
                    if let infoEnd, r.offset >= infoEnd { break }
                    let c = try BERHeader.read(r)
                    if infoEnd == nil && c.isEndOfContents { break }
                    guard c.tag == 0x80 || c.tag == 0xA0 else { throw SealError(.malformedObject, "unexpected element in EncryptedContentInfo") }
                    try contentPieces(c, r, into: &pieces)
                    rest = []
                }
                elements.append(der(0x30, innerType + algorithm + rest))
                continue
            }
            r.seek(to: start)
            let (_, raw) = try rawElement(r)
            elements.append(raw)
        }
        guard sawContentInfo else { throw SealError(.malformedObject, "CMS object without encrypted content info") }
        let header = der(0x30, contentType + der(0xA0, der(0x30, elements.flatMap { $0 })))
        return (header, pieces)
    }
}

/// A read-only OpenSSL BIO that serves the content pieces from the file.
final class PieceSource {
    let reader: ReadOnlyFile
    var pieces: [(Int, Int)]
    var index = 0
    var consumed = 0

    init(path: String, pieces: [(Int, Int)]) throws(SealError) {
        guard let f = ReadOnlyFile(path: path) else { throw SealError(.io, "cannot open \(path)") }
        reader = f
        self.pieces = pieces
    }

    func read(into buffer: UnsafeMutablePointer<CChar>, capacity: Int) -> Int {
        while index < pieces.count && consumed == pieces[index].1 {
            index += 1
            consumed = 0
        }
        guard index < pieces.count else { return 0 }
        let (offset, length) = pieces[index]
        let n = min(capacity, length - consumed)
        guard reader.read(at: offset + consumed, into: buffer, upTo: n) == n else { return -1 }
        consumed += n
        return n
    }

    nonisolated(unsafe) static let method: OpaquePointer = {
        let m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "fbk content pieces")!
        BIO_meth_set_read(m) { bio, buf, size in
            guard let bio, let buf, let ctx = BIO_get_data(bio) else { return -1 }
            let source = Unmanaged<PieceSource>.fromOpaque(ctx).takeUnretainedValue()
            return Int32(source.read(into: buf, capacity: Int(size)))
        }
        BIO_meth_set_ctrl(m) { _, cmd, _, _ in
            // FLUSH must succeed; EOF and PENDING are answered from the read side.
            cmd == BIO_CTRL_FLUSH ? 1 : 0
        }
        BIO_meth_set_create(m) { bio in
            BIO_set_init(bio, 1)
            return 1
        }
        return m
    }()

    /// A BIO reading from this source; the source must outlive it.
    func makeBIO() -> OpaquePointer? {
        guard let bio = BIO_new(Self.method) else { return nil }
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
        return bio
    }
}

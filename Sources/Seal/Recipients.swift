// Who an object is sealed to, read from its CMS header alone: the
// RecipientInfos of an (Auth)EnvelopedData are plaintext (RFC 5652 6.1),
// so the key-less check can tell which certificates can open each pack
// without any key (FORMAT.md 5.2, "Retention": re-keying).
//
// A recipient is named the way CMS names it: the certificate's issuer and
// serial number (`IssuerAndSerialNumber`, DER). fbk's own objects always
// use that form (OpenSSL's default for key transport and key agreement).

internal import COpenSSL

extension Certificate {
    /// The DER `IssuerAndSerialNumber` of this certificate: how a CMS
    /// RecipientInfo sealed to it names it.
    public var issuerAndSerial: [UInt8] {
        guard let name = X509_get_issuer_name(x509), let serial = X509_get0_serialNumber(x509) else { return [] }
        var nameDER: UnsafeMutablePointer<UInt8>?
        let n = i2d_X509_NAME(name, &nameDER)
        guard n > 0, let nameDER else { return [] }
        defer { COpenSSL_free(nameDER) }
        var serialDER: UnsafeMutablePointer<UInt8>?
        let s = i2d_ASN1_INTEGER(serial, &serialDER)
        guard s > 0, let serialDER else { return [] }
        defer { COpenSSL_free(serialDER) }
        let body = Array(UnsafeBufferPointer(start: nameDER, count: Int(n))) + Array(UnsafeBufferPointer(start: serialDER, count: Int(s)))
        return [0x30] + derLength(body.count) + body
    }
}

private func derLength(_ n: Int) -> [UInt8] {
    if n < 0x80 { return [UInt8(n)] }
    var bytes: [UInt8] = []
    var v = n
    while v > 0 { bytes.insert(UInt8(v & 0xff), at: 0); v >>= 8 }
    return [0x80 | UInt8(bytes.count)] + bytes
}

/// Reads the recipients of a CMS object from the first bytes of its BER
/// encoding. Every length is checked against what is there; nothing is
/// allocated beyond the input.
public enum CMSRecipients {
    /// How many bytes of an object a reader fetches to find its recipients
    /// (a RecipientInfo is well under 2 KiB; 64 of them fit).
    public static let headerLimit = 128 << 10

    /// The `IssuerAndSerialNumber` (DER, as stored) of every recipient of
    /// the object whose encoding starts with `prefix`.
    /// - Returns: nil when `prefix` ends before the RecipientInfos do (read more).
    /// - Throws: `SealError.malformedObject` when it is not an enveloped or
    ///   auth-enveloped CMS object, or names a recipient another way.
    public static func identifiers(prefix: [UInt8]) throws(SealError) -> [[UInt8]]? {
        var r = BERReader(bytes: prefix)
        do throws(BERReader.Malformed) {
            guard try r.enter(0x30) else { return nil }                     // ContentInfo
            guard let oid = try r.take(0x06) else { return nil }            // contentType
            let authEnveloped: [UInt8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17]
            let enveloped: [UInt8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03]
            guard oid == authEnveloped || oid == enveloped else { throw BERReader.Malformed("content type is not (auth-)enveloped data") }
            guard try r.enter(0xa0) else { return nil }                     // [0] EXPLICIT
            guard try r.enter(0x30) else { return nil }                     // (Auth)EnvelopedData
            guard try r.take(0x02) != nil else { return nil }               // version
            if r.peekTag() == 0xa0 { guard try r.skip() else { return nil } } // originatorInfo
            guard let set = try r.take(0x31) else { return nil }            // recipientInfos, definite
            var infos = BERReader(bytes: set)
            var out: [[UInt8]] = []
            while !infos.atEnd {
                switch infos.peekTag() {
                case 0x30:                                                  // KeyTransRecipientInfo
                    guard let ktri = try infos.take(0x30) else { throw BERReader.Malformed("a RecipientInfo is cut short") }
                    var k = BERReader(bytes: ktri)
                    guard try k.take(0x02) != nil, let rid = try k.element(0x30) else {
                        throw BERReader.Malformed("a key-transport recipient is not named by issuer and serial number")
                    }
                    out.append(rid)
                case 0xa1:                                                  // [1] KeyAgreeRecipientInfo
                    guard let kari = try infos.take(0xa1) else { throw BERReader.Malformed("a RecipientInfo is cut short") }
                    var k = BERReader(bytes: kari)
                    guard try k.take(0x02) != nil, try k.skip() else { throw BERReader.Malformed("a key-agreement recipient is malformed") }
                    if k.peekTag() == 0xa1 { guard try k.skip() else { throw BERReader.Malformed("bad ukm") } }
                    guard try k.skip(), let keys = try k.take(0x30) else { throw BERReader.Malformed("a key-agreement recipient has no keys") }
                    var rek = BERReader(bytes: keys)
                    while !rek.atEnd {
                        guard let one = try rek.take(0x30) else { throw BERReader.Malformed("a recipient key is cut short") }
                        var e = BERReader(bytes: one)
                        guard let rid = try e.element(0x30) else {
                            throw BERReader.Malformed("a key-agreement recipient is not named by issuer and serial number")
                        }
                        out.append(rid)
                    }
                default:
                    throw BERReader.Malformed("a RecipientInfo of a kind fbk does not write (tag \(infos.peekTag()))")
                }
            }
            return out
        } catch {
            throw SealError(.malformedObject, "not a CMS object fbk can read the recipients of: \(error.why)")
        }
    }
}

/// A reader of BER TLVs over bytes that may end early: `nil` means
/// "not enough bytes yet", a throw means "this is not what it should be".
private struct BERReader {
    struct Malformed: Error { let why: String; init(_ why: String) { self.why = why } }
    let bytes: [UInt8]
    var at = 0
    var atEnd: Bool { at >= bytes.count }

    init(bytes: [UInt8]) { self.bytes = bytes }

    func peekTag() -> UInt8 { at < bytes.count ? bytes[at] : 0 }

    /// Tag and length at `at`: (header size, content length or nil for indefinite); nil if cut short.
    private func header() throws(Malformed) -> (size: Int, length: Int?)? {
        guard at + 2 <= bytes.count else { return nil }
        guard bytes[at] & 0x1f != 0x1f else { throw Malformed("multi-byte tags are not used by CMS") }
        let first = bytes[at + 1]
        if first < 0x80 { return (2, Int(first)) }
        if first == 0x80 { return (2, nil) }
        let count = Int(first & 0x7f)
        guard count <= 4 else { throw Malformed("a length of \(count) bytes") }
        guard at + 2 + count <= bytes.count else { return nil }
        var n = 0
        for i in 0..<count { n = n << 8 | Int(bytes[at + 2 + i]) }
        return (2 + count, n)
    }

    /// Steps into a constructed element of `tag` (definite or indefinite).
    mutating func enter(_ tag: UInt8) throws(Malformed) -> Bool {
        guard at < bytes.count else { return false }
        guard bytes[at] == tag else { throw Malformed("expected tag \(tag), found \(bytes[at])") }
        guard let h = try header() else { return false }
        at += h.size
        return true
    }

    /// The content of a definite-length element of `tag`, stepping over it.
    mutating func take(_ tag: UInt8) throws(Malformed) -> [UInt8]? {
        guard at < bytes.count else { return nil }
        guard bytes[at] == tag else { throw Malformed("expected tag \(tag), found \(bytes[at])") }
        guard let h = try header() else { return nil }
        guard let length = h.length else { throw Malformed("an indefinite length where fbk writes a definite one") }
        guard at + h.size + length <= bytes.count else { return nil }
        defer { at += h.size + length }
        return Array(bytes[(at + h.size)..<(at + h.size + length)])
    }

    /// The whole encoding (tag, length, content) of a definite element of `tag`.
    mutating func element(_ tag: UInt8) throws(Malformed) -> [UInt8]? {
        let start = at
        guard try take(tag) != nil else { return nil }
        return Array(bytes[start..<at])
    }

    /// Steps over any definite-length element; false if cut short.
    mutating func skip() throws(Malformed) -> Bool {
        guard at < bytes.count else { return false }
        guard let h = try header() else { return false }
        guard let length = h.length else { throw Malformed("an indefinite length where fbk writes a definite one") }
        guard at + h.size + length <= bytes.count else { return false }
        at += h.size + length
        return true
    }
}

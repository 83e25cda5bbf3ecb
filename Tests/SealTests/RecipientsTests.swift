import Foundation
import Seal
import Testing

/// Who an object is sealed to, read from its plaintext CMS header, without a key.
@Suite struct RecipientsTests {
    @Test func theHeaderNamesEveryRecipientAsItsCertificateDoes() throws {
        let certs = [Keys.rsa.certificate, Keys.p384.certificate]
        let sealed = try Envelope(recipients: certs).seal(Array(repeating: 7, count: 100_000))
        let ids = try #require(try CMSRecipients.identifiers(prefix: Array(sealed.prefix(CMSRecipients.headerLimit))))
        #expect(ids == certs.map(\.issuerAndSerial))
        #expect(!ids.contains(Keys.rsaOther.certificate.issuerAndSerial))
    }

    /// What `openssl cms -encrypt` writes (a device's EnvelopedData) reads the same way.
    @Test func opensslEnvelopedDataReadsTheSame() throws {
        let dir = try TemporaryDirectory()
        let input = try dir.write("in", Array(repeating: 1, count: 5000))
        let out = dir.file("out.cms")
        let r = try runTool("openssl", ["cms", "-encrypt", "-binary", "-aes-256-cbc", "-outform", "DER", "-in", input, "-out", out,
                                        Keys.rsa.certificatePath, Keys.p256.certificatePath])
        #expect(r.status == 0, "\(r.stderr)")
        let bytes = [UInt8](FileManager.default.contents(atPath: out)!)
        #expect(try CMSRecipients.identifiers(prefix: bytes) == [Keys.rsa.certificate.issuerAndSerial, Keys.p256.certificate.issuerAndSerial])
    }

    @Test func aShortPrefixAsksForMoreAndGarbageIsRefused() throws {
        let sealed = try Envelope(recipients: [Keys.rsa.certificate]).seal([1, 2, 3])
        for n in [0, 1, 10, 40, 200] { #expect(try CMSRecipients.identifiers(prefix: Array(sealed.prefix(n))) == nil, "prefix \(n)") }
        #expect(throws: SealError.self) { try CMSRecipients.identifiers(prefix: Array("not a CMS object at all".utf8)) }
        // Every truncation and every single-byte change either asks for more, names recipients, or is refused: never a crash.
        for i in stride(from: 0, to: min(sealed.count, 600), by: 3) {
            var b = Array(sealed.prefix(700))
            b[i] ^= 0xff
            _ = try? CMSRecipients.identifiers(prefix: b)
        }
    }
}

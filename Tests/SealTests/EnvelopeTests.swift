import Foundation
import Seal
import Testing

@Suite struct EnvelopeTests {
    static let recipientSets: [[KeyPair]] = [[Keys.rsa], [Keys.p384], [Keys.p256], [Keys.rsa, Keys.p384]]

    @Test(arguments: 0..<recipientSets.count)
    func everyObjectDecryptsWithOpensslCms(_ index: Int) throws {
        let pairs = Self.recipientSets[index]
        let envelope = try Envelope(recipients: pairs.map(\.certificate))
        let plain = sampleBytes(1 << 20, seed: UInt64(index + 3))
        let sealed = try envelope.seal(plain)
        let dir = try TempDir()
        let object = try dir.write("obj", sealed)
        for pair in pairs {
            // Each recipient can decrypt alone.
            let r = try runTool("openssl", ["cms", "-decrypt", "-binary", "-inform", "DER", "-in", object,
                                            "-recip", pair.certificatePath, "-inkey", pair.keyPath])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == plain, "openssl output differs for \(pair.name)")
            let opened = try Opener(key: pair.key, certificate: pair.certificate).open(sealed)
            #expect(opened.plaintext == plain)
            #expect(opened.protection == .authenticated)
        }
        let printed = try runTool("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", object])
        let structure = String(decoding: printed.stdout, as: UTF8.self)
        #expect(structure.contains("id-smime-ct-authEnvelopedData"))
        #expect(structure.contains("aes-256-gcm"))
        if pairs.contains(where: { $0.name.hasPrefix("rsa") }) { #expect(structure.contains("rsaesOaep")) }
    }

    @Test func fileSealingStreamsAndReportsSizeAndHash() throws {
        let dir = try TempDir()
        let plain = sampleBytes(3 << 20 + 5, seed: 77)
        let input = try dir.write("plain", plain)
        let envelope = try Envelope(recipients: [Keys.rsa.certificate])
        let (size, digest) = try envelope.seal(fileAt: input, to: dir.file("sealed"))
        let sealed = dir.read("sealed")!
        #expect(size == sealed.count)
        #expect(digest == SHA256.hash(sealed))
        let r = try runTool("openssl", ["cms", "-decrypt", "-binary", "-inform", "DER", "-in", dir.file("sealed"),
                                        "-recip", Keys.rsa.certificatePath, "-inkey", Keys.rsa.keyPath])
        #expect(r.stdout == plain)
        let protection = try Opener(key: Keys.rsa.key, certificate: Keys.rsa.certificate)
            .open(fileAt: dir.file("sealed"), to: dir.file("opened"))
        #expect(protection == .authenticated)
        #expect(dir.read("opened") == plain)
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["opened", "plain", "sealed"])
    }

    @Test func sealingStreamWrittenInPiecesOpensEverywhere() throws {
        let dir = try TempDir()
        let plain = sampleBytes(3 << 20 + 11, seed: 78)
        let envelope = try Envelope(recipients: [Keys.p384.certificate, Keys.rsa.certificate])
        let stream = try envelope.sealingStream(to: dir.file("sealed"))
        // Pieces of awkward sizes, including empty ones and one of several MiB.
        var offset = 0
        for length in [0, 1, 4095, 4097, 65_536, 2 << 20, 7] {
            try stream.write(Array(plain[offset..<offset + length]))
            offset += length
        }
        try stream.write(Array(plain[offset...]))
        #expect(stream.count == plain.count)
        #expect(dir.read("sealed") == nil, "nothing appears before finish")
        let (size, digest) = try stream.finish()
        let sealed = dir.read("sealed")!
        #expect(size == sealed.count && digest == SHA256.hash(sealed))
        for pair in [Keys.p384, Keys.rsa] {
            let r = try runTool("openssl", ["cms", "-decrypt", "-binary", "-inform", "DER", "-in", dir.file("sealed"),
                                            "-recip", pair.certificatePath, "-inkey", pair.keyPath])
            #expect(r.stdout == plain, "openssl output differs for \(pair.name)")
        }
        let opened = try Opener(key: Keys.p384.key, certificate: Keys.p384.certificate).open(sealed)
        #expect(opened.plaintext == plain && opened.protection == .authenticated)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["sealed"])
        // The content is in 256 KiB pieces (FORMAT.md 5.2), not the cipher's 4 KiB.
        let parsed = try runTool("openssl", ["asn1parse", "-inform", "DER", "-in", dir.file("sealed")])
        let pieces = String(decoding: parsed.stdout, as: UTF8.self).components(separatedBy: "l=262144 ").count - 1
        #expect(pieces == plain.count / (256 << 10), "\(String(decoding: parsed.stdout.suffix(2000), as: UTF8.self))")
    }

    @Test func abandonedSealingStreamLeavesNothing() throws {
        let dir = try TempDir()
        let envelope = try Envelope(recipients: [Keys.p256.certificate])
        do {
            let stream = try envelope.sealingStream(to: dir.file("sealed"))
            try stream.write(sampleBytes(100_000, seed: 1))
            stream.abandon()
            #expect(throws: SealError.self) { try stream.finish() }
        }
        do {
            // Dropped without finish or abandon.
            let stream = try envelope.sealingStream(to: dir.file("other"))
            try stream.write(sampleBytes(10, seed: 2))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == [])
    }

    static let deviceOutputs: [(String, [String])] = [
        ("cms gcm DER", ["cms", "-encrypt", "-binary", "-stream", "-aes-256-gcm", "-outform", "DER"]),
        ("cms gcm PEM", ["cms", "-encrypt", "-binary", "-stream", "-aes-256-gcm", "-outform", "PEM"]),
        ("cms cbc DER", ["cms", "-encrypt", "-binary", "-stream", "-aes-256-cbc", "-outform", "DER"]),
        ("smime cbc DER", ["smime", "-encrypt", "-binary", "-stream", "-aes-256-cbc", "-outform", "DER"]),
        ("smime cbc PEM", ["smime", "-encrypt", "-binary", "-stream", "-aes-256-cbc", "-outform", "PEM"]),
        ("smime cbc S/MIME", ["smime", "-encrypt", "-binary", "-aes-256-cbc"]),
    ]

    @Test(arguments: 0..<deviceOutputs.count)
    func opensDeviceScriptOutput(_ index: Int) throws {
        let (name, arguments) = Self.deviceOutputs[index]
        let dir = try TempDir()
        let plain = sampleBytes(700_001, seed: UInt64(index + 100))
        let input = try dir.write("in", plain)
        let r = try runTool("openssl", arguments + ["-in", input, "-out", dir.file("obj"), Keys.rsa.certificatePath])
        #expect(r.status == 0, "\(r.stderr)")
        let opener = try Opener(key: Keys.rsa.key, certificate: Keys.rsa.certificate)
        let protection = try opener.open(fileAt: dir.file("obj"), to: dir.file("out"))
        #expect(dir.read("out") == plain, "\(name)")
        #expect(protection == (name.contains("gcm") ? .authenticated : .unauthenticated), "\(name)")
    }
}

@Suite struct EnvelopeErrorTests {
    static func sealedObject() throws -> [UInt8] {
        try Envelope(recipients: [Keys.rsa.certificate]).seal(sampleBytes(200_000, seed: 5))
    }

    func code(_ body: () throws -> Void) -> SealError.Code? {
        do { try body() } catch let e as SealError { return e.code } catch { return nil }
        return nil
    }

    @Test func wrongPrivateKeyIsNamed() throws {
        let object = try Self.sealedObject()
        let withCert = code { _ = try Opener(key: Keys.rsaOther.key, certificate: Keys.rsaOther.certificate).open(object) }
        #expect(withCert == .wrongKey)
        // Without the certificate the key is tried on the object's key block;
        // repeat, since a wrong RSA key fails in more than one way.
        for _ in 0..<8 {
            let withoutCert = code { _ = try Opener(key: Keys.rsaOther.key, certificate: nil).open(object) }
            #expect(withoutCert == .wrongKey)
        }
        let ecWithoutCert = code { _ = try Opener(key: Keys.p384.key, certificate: nil).open(object) }
        #expect(ecWithoutCert == .wrongKey)
        let mismatched = code { _ = try Opener(key: Keys.rsaOther.key, certificate: Keys.rsa.certificate) }
        #expect(mismatched == .wrongKey)
    }

    @Test func everyWrongPassphraseIsNamed() throws {
        // One wrong passphrase in about 256 decrypts to a valid padding and
        // then fails to parse: still a wrong passphrase. A key with one
        // PBKDF2 iteration (made by openssl) makes many tries cheap.
        let dir = try TempDir()
        let plain = dir.file("plain.pem"), path = dir.file("cheap.pem")
        let generated = try runTool("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", plain])
        try #require(generated.status == 0, "\(generated.stderr)")
        let made = try runTool("openssl", ["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-iter", "1", "-in", plain,
                                           "-out", path, "-passout", "pass:right"])
        try #require(made.status == 0, "\(made.stderr)")
        for i in 0..<1500 {
            let got = code { _ = try PrivateKey(contentsOf: path, passphrase: Array("wrong \(i)".utf8)) }
            #expect(got == .wrongPassphrase, "passphrase \"wrong \(i)\"")
            if got != .wrongPassphrase { break }
        }
        _ = try PrivateKey(contentsOf: path, passphrase: Array("right".utf8))
        // A cipher OpenSSL has only in its legacy provider is not a wrong
        // passphrase, even though the container is intact.
        let legacy = dir.file("legacy.pem")
        let old = try runTool("openssl", ["pkcs8", "-topk8", "-v1", "PBE-SHA1-RC2-40", "-provider", "legacy", "-provider", "default",
                                          "-in", plain, "-out", legacy, "-passout", "pass:right"])
        if old.status == 0 {
            #expect(code { _ = try PrivateKey(contentsOf: legacy, passphrase: Array("right".utf8)) } == .unreadableKeyMaterial)
        }
    }

    @Test func wrongPassphraseIsNamed() throws {
        let dir = try TempDir()
        let pair = try generateKeyPair(type: .p384, subject: "t", passphrase: Array("right horse".utf8))
        let path = try dir.write("k.pem", Array(pair.privateKeyPEM.utf8))
        #expect(code { _ = try PrivateKey(contentsOf: path, passphrase: Array("wrong".utf8)) } == .wrongPassphrase)
        #expect(code { _ = try PrivateKey(contentsOf: path, passphrase: nil) } == .unreadableKeyMaterial)
        let key = try PrivateKey(contentsOf: path, passphrase: Array("right horse".utf8))
        let cert = try Certificate(bytes: Array(pair.certificatePEM.utf8))
        #expect(key.matches(cert))
        // openssl reads the same key file with the same passphrase: PBKDF2 600000 iterations.
        let r = try runTool("openssl", ["pkcs8", "-in", path, "-passin", "pass:right horse", "-nocrypt", "-topk8"])
        #expect(r.status == 0, "\(r.stderr)")
        let info = try runTool("openssl", ["asn1parse", "-in", path])
        #expect(String(decoding: info.stdout, as: UTF8.self).contains("hmacWithSHA256"))
        #expect(String(decoding: info.stdout, as: UTF8.self).contains(":0927C0"))  // 600000
        // And an object sealed to the generated certificate opens with it.
        let sealed = try Envelope(recipients: [cert]).seal([1, 2, 3])
        #expect(try Opener(key: key, certificate: cert).open(sealed).plaintext == [1, 2, 3])
    }

    @Test func certificatesWithoutUsableKeysAreRefused() throws {
        #expect(code { _ = try Envelope(recipients: [Keys.rsaSmall.certificate]) } == .unusableCertificate)
        #expect(code { _ = try Envelope(recipients: [Keys.ed25519.certificate]) } == .unusableCertificate)
        #expect(code { _ = try Envelope(recipients: []) } == .invalidArgument)
        #expect(code { _ = try Certificate(bytes: Array("not a certificate".utf8)) } == .unreadableKeyMaterial)
        #expect(code { _ = try Certificate(contentsOf: "/nonexistent/cert.pem") } == .unreadableKeyMaterial)
    }

    @Test func truncatedObjectIsNamed() throws {
        let object = try Self.sealedObject()
        let opener = try Opener(key: Keys.rsa.key, certificate: Keys.rsa.certificate)
        for keep in [object.count - 1, object.count - 40, object.count / 2, 700] {
            let c = code { _ = try opener.open(Array(object.prefix(keep))) }
            #expect(c == .truncatedObject, "kept \(keep) bytes: \(String(describing: c))")
        }
    }

    @Test func flippedBitsAreDetected() throws {
        let object = try Self.sealedObject()
        let opener = try Opener(key: Keys.rsa.key, certificate: Keys.rsa.certificate)
        func flipped(_ at: Int) -> [UInt8] { var o = object; o[at] ^= 0x01; return o }
        // Header: inside the RSA-encrypted content key (the recipient info).
        let header = code { _ = try opener.open(flipped(200)) }
        #expect(header == .wrongKey || header == .malformedObject, "\(String(describing: header))")
        // Ciphertext, in the middle of the content.
        #expect(code { _ = try opener.open(flipped(object.count / 2)) } == .authenticationFailed)
        // The GCM tag: the last OCTET STRING, before the three end-of-contents
        // markers (00 00) of the indefinite-length encoding.
        #expect(Array(object.suffix(6)) == [0, 0, 0, 0, 0, 0])
        #expect(Array(object.suffix(24).prefix(2)) == [0x04, 0x10])
        #expect(code { _ = try opener.open(flipped(object.count - 6 - 5)) } == .authenticationFailed)
        #expect(code { _ = try opener.open(sampleBytes(5000)) } == .malformedObject)
        #expect(code { _ = try opener.open([]) } == .malformedObject)
    }

    @Test func failedDecryptionLeavesNoFile() throws {
        var object = try Self.sealedObject()
        object[object.count / 2] ^= 0x80
        let dir = try TempDir()
        let path = try dir.write("obj", object)
        let opener = try Opener(key: Keys.rsa.key, certificate: Keys.rsa.certificate)
        #expect(throws: SealError.self) { try opener.open(fileAt: path, to: dir.file("out")) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["obj"])
    }

    /// A restore's prefetcher and its restoring thread decrypt packs at
    /// the same time with one Opener: its key and certificate are shared
    /// (OpenSSL 3 allows that), each opening has its own CMS state.
    @Test(arguments: [Keys.rsa, Keys.p384])
    func oneOpenerServesSeveralThreadsAtOnce(_ pair: KeyPair) throws {
        let dir = try TempDir()
        let envelope = try Envelope(recipients: [pair.certificate])
        let plains = (0..<4).map { sampleBytes(200_000 + $0 * 70_001, seed: UInt64(90 + $0)) }
        for (i, plain) in plains.enumerated() {
            _ = try envelope.seal(fileAt: try dir.write("plain\(i)", plain), to: dir.file("sealed\(i)"))
        }
        let opener = try Opener(key: pair.key, certificate: pair.certificate)
        let wrong = Counter()
        DispatchQueue.concurrentPerform(iterations: plains.count) { i in
            for round in 0..<20 {
                let out = "opened\(i)-\(round)"
                let ok = (try? opener.open(fileAt: dir.file("sealed\(i)"), to: dir.file(out))) != nil && dir.read(out) == plains[i]
                if !ok { wrong.add() }
                unlink(dir.file(out))
            }
        }
        #expect(wrong.value == 0)
    }
}

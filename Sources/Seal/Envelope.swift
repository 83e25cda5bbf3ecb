// CMS (RFC 5652) encryption to X.509 recipients, and decryption with the
// operator's private key.
//
// fbk writes AuthEnvelopedData with AES-256-GCM (RFC 5083/5084), so any
// change to an object is detected when it is opened. It reads that and
// EnvelopedData with AES-256-CBC, which `openssl smime` on small devices
// produces; CBC has no integrity check, so callers must verify content
// hashes themselves (fbk's chunk IDs do). RSA recipients use RSAES-OAEP
// with SHA-256; EC recipients use ECDH key agreement.

internal import COpenSSL
import FoundationEssentials
import Glibc

/// The encryption of the content of an opened object.
public enum ContentProtection: String, Sendable {
    /// AuthEnvelopedData, AES-GCM: tampering would have been detected.
    case authenticated = "AuthEnvelopedData (AES-GCM, authenticated)"
    /// EnvelopedData, e.g. AES-CBC: no integrity protection.
    case unauthenticated = "EnvelopedData (unauthenticated)"
}

/// Encrypts objects to a fixed set of recipient certificates.
public struct Envelope: Sendable {
    /// Every recipient can decrypt alone.
    public let recipients: [Certificate]

    /// - Throws: `SealError.invalidArgument` with no recipients,
    ///   `.unusableCertificate` if one cannot receive CMS-encrypted data.
    public init(recipients: [Certificate]) throws(SealError) {
        guard !recipients.isEmpty else {
            throw SealError(.invalidArgument, "no recipient certificate: fbk never stores anything unencrypted")
        }
        for r in recipients { try r.checkUsableAsRecipient() }
        self.recipients = recipients
    }

    /// Encrypts bytes in memory into a BER CMS object.
    public func seal(_ plaintext: UnsafeRawBufferPointer) throws(SealError) -> [UInt8] {
        let stream = try SealingStream(envelope: self)
        try stream.write(plaintext)
        return try stream.finishInMemory()
    }

    public func seal(_ plaintext: [UInt8]) throws(SealError) -> [UInt8] {
        try plaintext.withUnsafeBytes { p in Result { () throws(SealError) in try seal(p) } }.get()
    }

    /// Encrypts bytes in memory into a file (through a temporary name).
    /// - Returns: the size and SHA-256 of the sealed bytes.
    public func seal(_ plaintext: [UInt8], to outputPath: String) throws(SealError) -> (size: Int, sha256: Digest) {
        let stream = try sealingStream(to: outputPath)
        try stream.write(plaintext)
        return try stream.finish()
    }

    /// Encrypts a file into another, streaming: memory stays bounded
    /// whatever the size. The output appears only when complete.
    /// - Returns: the size and SHA-256 of the sealed bytes.
    public func seal(fileAt inputPath: String, to outputPath: String) throws(SealError) -> (size: Int, sha256: Digest) {
        let stream = try sealingStream(to: outputPath)
        try forEachPiece(ofFileAt: inputPath) { piece throws(SealError) in try stream.write(piece) }
        return try stream.finish()
    }

    static let streamFlags = UInt32(CMS_BINARY | CMS_STREAM | CMS_PARTIAL)

    /// An AuthEnvelopedData (AES-256-GCM) structure with every recipient
    /// added, ready to stream content into; freed with its owner.
    /// The corresponding C functions are `CMS_encrypt_ex` and `CMS_add1_recipient_cert`.
    func contentInfo() throws(SealError) -> ContentInfo {
        _ = OpenSSLErrors.drain()
        guard let cipher = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) else {
            throw SealError.openSSL(.library, "OpenSSL provides no AES-256-GCM")
        }
        defer { EVP_CIPHER_free(cipher) }
        let flags = Envelope.streamFlags
        guard let pointer = CMS_encrypt_ex(nil, nil, cipher, flags, nil, nil) else {
            throw SealError.openSSL(.library, "CMS_encrypt_ex failed")
        }
        let owner = ContentInfo(pointer)
        let cms = owner.pointer
        for certificate in recipients {
            guard let ri = CMS_add1_recipient_cert(cms, certificate.x509, flags | UInt32(CMS_KEY_PARAM)) else {
                throw SealError.openSSL(.unusableCertificate, "cannot encrypt to certificate \(certificate.subject)")
            }
            if let key = X509_get0_pubkey(certificate.x509), EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA {
                guard let pctx = CMS_RecipientInfo_get0_pkey_ctx(ri),
                      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0,
                      EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) > 0,
                      EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0 else {
                    throw SealError.openSSL(.library, "cannot set RSA-OAEP for \(certificate.subject)")
                }
            }
        }
        return owner
    }
}

/// A `CMS_ContentInfo` owned by Swift: freed when its owner goes, on every
/// path, so no caller frees it by hand.
final class ContentInfo {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { CMS_ContentInfo_free(pointer) }
}

/// A `BIO` owned by Swift (one not handed to another owner).
final class OwnedBIO {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { BIO_free(pointer) }
}

/// Opens objects with the operator's private key.
public struct Opener: Sendable {
    public let key: PrivateKey
    /// The certificate of `key`, if known: it makes "not encrypted to this
    /// key" a precise error.
    public let certificate: Certificate?

    /// - Throws: `SealError.wrongKey` if the certificate does not belong to the key.
    public init(key: PrivateKey, certificate: Certificate?) throws(SealError) {
        if let certificate, !key.matches(certificate) {
            throw SealError(.wrongKey, "certificate \(certificate.subject) does not belong to this private key")
        }
        self.key = key
        self.certificate = certificate
    }

    /// Decrypts an object held in memory (DER/BER, PEM or S/MIME).
    public func open(_ object: [UInt8]) throws(SealError) -> (plaintext: [UInt8], protection: ContentProtection) {
        guard let output = BIO_new(BIO_s_mem()) else { throw SealError.openSSL(.library, "BIO_new failed") }
        defer { BIO_free(output) }
        let protection = try withMemoryBIO(object) { (input) throws(SealError) in
            try open(input: input, prefix: Array(object.prefix(64)), output: output)
        }
        var p: UnsafeMutablePointer<CChar>?
        let n = COpenSSL_BIO_get_mem_data(output, &p)
        return ([UInt8](UnsafeRawBufferPointer(start: p, count: n)), protection)
    }

    /// Decrypts a file into another. Nothing appears at `outputPath` unless
    /// decryption (and, for AES-GCM, authentication) succeeded.
    /// - Parameter durable: sync the output to disk before it takes its name.
    ///   A scratch copy that is read and removed within the same run (a
    ///   restore's decrypted packs) passes false: syncing it would write every
    ///   pack to the disk only to delete it, and make the caller wait for that.
    public func open(fileAt inputPath: String, to outputPath: String, durable: Bool = true) throws(SealError) -> ContentProtection {
        guard let file = ReadOnlyFile(path: inputPath) else {
            throw SealError(.io, "cannot open \(inputPath) for reading")
        }
        let prefix = file.read(at: 0, upTo: 64) ?? []
        var protection = ContentProtection.authenticated
        if prefix.first == 0x30 {
            // DER/BER: stream the content, memory stays bounded.
            try AtomicFile.write(to: outputPath, durable: durable) { (bio) throws(SealError) in
                protection = try openStreaming(path: inputPath, output: bio)
            }
            return protection
        }
        // PEM and S/MIME are base64 text: OpenSSL reads them whole.
        guard let input = BIO_new_file(inputPath, "rb") else {
            throw SealError.openSSL(.io, "cannot open \(inputPath) for reading")
        }
        defer { BIO_free(input) }
        try AtomicFile.write(to: outputPath, durable: durable) { (bio) throws(SealError) in
            protection = try open(input: input, prefix: prefix, output: bio)
        }
        return protection
    }

    func open(input: OpaquePointer, prefix: [UInt8], output: OpaquePointer) throws(SealError) -> ContentProtection {
        let cms = try parse(input: input, prefix: prefix)
        return try withExtendedLifetime(cms) { () throws(SealError) in try decrypt(cms.pointer, detachedContent: nil, output: output) }
    }

    /// Decrypts a DER/BER object from a file with bounded memory: the
    /// content streams from the file (see StreamingOpen.swift).
    func openStreaming(path: String, output: OpaquePointer) throws(SealError) -> ContentProtection {
        let (header, pieces) = try StreamingOpen.split(path: path)
        let cms: ContentInfo = try withMemoryBIO(header) { (bio) throws(SealError) in
            try parse(input: bio, prefix: Array(header.prefix(64)))
        }
        let source = try PieceSource(path: path, pieces: pieces)
        guard let content = source.makeBIO() else { throw SealError.openSSL(.library, "BIO_new failed") }
        defer { BIO_free(content) }
        return try withExtendedLifetime((source, cms)) { () throws(SealError) in
            try decrypt(cms.pointer, detachedContent: content, output: output)
        }
    }

    private func parse(input: OpaquePointer, prefix: [UInt8]) throws(SealError) -> ContentInfo {
        _ = OpenSSLErrors.drain()
        let text = String(decoding: prefix, as: UTF8.self)
        let cms: OpaquePointer?
        if text.hasPrefix("-----BEGIN") {
            cms = PEM_read_bio_CMS(input, nil, nil, nil)
        } else if text.hasPrefix("MIME-Version") || text.hasPrefix("Content-") {
            cms = SMIME_read_CMS(input, nil)
        } else {
            cms = d2i_CMS_bio(input, nil)
        }
        guard let cms else {
            let errors = OpenSSLErrors.drain()
            if looksLikeEncryptedCMS(prefix) || text.hasPrefix("-----BEGIN CMS") || text.hasPrefix("-----BEGIN PKCS7") {
                throw SealError(.truncatedObject,
                                "the object ends before its end: it is truncated or damaged (an incomplete upload?)",
                                detail: errors.text)
            }
            throw SealError(.malformedObject, "not an encrypted CMS object (DER, PEM or S/MIME)", detail: errors.text)
        }
        return ContentInfo(cms)
    }

    private func decrypt(_ cms: OpaquePointer, detachedContent: OpaquePointer?, output: OpaquePointer) throws(SealError) -> ContentProtection {
        let type = OBJ_obj2nid(CMS_get0_type(cms))
        let protection: ContentProtection
        switch type {
        case NID_id_smime_ct_authEnvelopedData: protection = .authenticated
        case NID_pkcs7_enveloped: protection = .unauthenticated
        default:
            throw SealError(.malformedObject, "the CMS object is not encrypted data (content type \(type))")
        }

        if let certificate, !isRecipient(cms, certificate) {
            throw SealError(.wrongKey,
                            "this object is not encrypted to \(certificate.subject): use the private key of one of its recipients")
        }
        // Offline, with an operator's own key, there is no padding oracle to
        // guard against; CMS_DEBUG_DECRYPT turns a wrong key into an error
        // instead of a random content key.
        let flags = UInt32(CMS_BINARY | CMS_DEBUG_DECRYPT)
        if CMS_decrypt(cms, key.pkey, certificate?.x509, detachedContent, output, flags) != 1 {
            let errors = OpenSSLErrors.drain()
            if errors.reasons.isEmpty || errors.text.contains("cipher final") || errors.text.contains("bad decrypt")
                || errors.text.contains("CMS_R_CONTENT_VERIFY") {
                throw SealError(.authenticationFailed,
                                "decryption failed: the object was altered or damaged after it was encrypted",
                                detail: errors.text)
            }
            // Failures while recovering the content key: RSA/EC errors, or
            // CMS finding no recipient it can decrypt.
            let keyStage = ["no matching recipient", "decrypt error", "unable to decrypt", "oaep",
                            "rsa routines", "EC routines", "data too large for modulus", "key unwrap"]
            if keyStage.contains(where: { errors.text.contains($0) }) {
                throw SealError(.wrongKey,
                                certificate == nil
                                    ? "the private key cannot open this object: it is not a recipient, or the object's key block is damaged"
                                    : "the object's key block for this recipient is damaged: its content key cannot be recovered",
                                detail: errors.text)
            }
            throw SealError(.malformedObject, "decryption failed", detail: errors.text)
        }
        return protection
    }

    /// Whether `certificate` is among the object's recipients.
    private func isRecipient(_ cms: OpaquePointer, _ certificate: Certificate) -> Bool {
        guard let infos = CMS_get0_RecipientInfos(cms) else { return false }
        for i in 0..<COpenSSL_sk_CMS_RecipientInfo_num(infos) {
            guard let ri = COpenSSL_sk_CMS_RecipientInfo_value(infos, i) else { continue }
            switch CMS_RecipientInfo_type(ri) {
            case CMS_RECIPINFO_TRANS:
                if CMS_RecipientInfo_ktri_cert_cmp(ri, certificate.x509) == 0 { return true }
            case CMS_RECIPINFO_AGREE:
                guard let reks = CMS_RecipientInfo_kari_get0_reks(ri) else { continue }
                for j in 0..<COpenSSL_sk_CMS_RecipientEncryptedKey_num(reks) {
                    if let rek = COpenSSL_sk_CMS_RecipientEncryptedKey_value(reks, j),
                       CMS_RecipientEncryptedKey_cert_cmp(rek, certificate.x509) == 0 { return true }
                }
            default: continue
            }
        }
        _ = OpenSSLErrors.drain()
        return false
    }
}

/// The DER prefix of a ContentInfo holding EnvelopedData or AuthEnvelopedData.
func looksLikeEncryptedCMS(_ prefix: [UInt8]) -> Bool {
    let enveloped: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03]
    let authEnveloped: [UInt8] = [0x06, 0x0B, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x17]
    guard prefix.first == 0x30 else { return false }
    for start in 2...6 where start < prefix.count {
        let rest = Array(prefix[start...])
        if rest.starts(with: enveloped) || rest.starts(with: authEnveloped) { return true }
    }
    return false
}

/// Writes a file through a temporary name and renames it into place only
/// after the writer succeeded and, when `durable`, the data reached the disk.
enum AtomicFile {
    static func write(to path: String, durable: Bool, _ body: (OpaquePointer) throws(SealError) -> Void) throws(SealError) {
        let file = try OutputFile(path: path, hashing: false)
        do throws(SealError) {
            try body(file.bio)
            _ = try file.commit(durable: durable)
        } catch {
            file.abandon()
            throw error
        }
    }
}

/// A file being written through a temporary name, behind a write buffer
/// (OpenSSL's streaming encoders write in pieces of a few KiB), and hashed
/// as it is written if asked. `commit` flushes, syncs (unless told the file
/// is scratch) and renames it into place; `abandon` removes it.
final class OutputFile {
    let path: String
    let temporary: String
    private var fd: Int32
    /// The buffered BIO to write to.
    let bio: OpaquePointer
    /// The SHA-256 filter between the buffer and the file, if hashing.
    private let digest: OpaquePointer?
    /// The file's own BIO, at the end of the chain.
    private let sink: OpaquePointer
    private var done = false

    init(path: String, hashing: Bool) throws(SealError) {
        self.path = path
        temporary = path + ".fbk-partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SealError(.io, "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        guard let sink = BIO_new_fd(fd, BIO_NOCLOSE) else {
            close(fd)
            unlink(temporary)
            throw SealError.openSSL(.library, "BIO_new failed")
        }
        var digest: OpaquePointer?
        if hashing {
            // The corresponding C macro is `BIO_set_md`.
            digest = BIO_new(BIO_f_md())
            if let d = digest, BIO_ctrl(d, BIO_C_SET_MD, 1, UnsafeMutableRawPointer(EVP_sha256())) != 1 {
                BIO_free(d)
                digest = nil
            }
        }
        guard !hashing || digest != nil, let buffer = BIO_new(BIO_f_buffer()) else {
            if let digest { BIO_free(digest) }
            BIO_free_all(sink)
            close(fd)
            unlink(temporary)
            throw SealError.openSSL(.library, "cannot set up the buffer or SHA-256 of \(temporary) (out of memory?)")
        }
        self.digest = digest
        self.sink = sink
        _ = BIO_int_ctrl(buffer, BIO_C_SET_BUFF_SIZE, 1 << 18, 1)
        bio = BIO_push(buffer, digest.map { BIO_push($0, sink) } ?? sink)
    }

    deinit { abandon() }

    /// - Returns: the size of the bytes written, and their SHA-256 if hashing.
    func commit(durable: Bool = true) throws(SealError) -> (size: Int, sha256: Digest?) {
        var failure: SealError?
        if COpenSSL_BIO_flush(bio) != 1 { failure = SealError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var sha256: Digest?
        if failure == nil, let digest {
            // The corresponding C macro is `BIO_get_md_ctx`.
            var context: OpaquePointer?
            var sum = [UInt8](repeating: 0, count: 32)
            var sumLength: UInt32 = 0
            let gotContext = withUnsafeMutablePointer(to: &context) { BIO_ctrl(digest, BIO_C_GET_MD_CTX, 0, $0) == 1 }
            if gotContext, let context, EVP_DigestFinal_ex(context, &sum, &sumLength) == 1, sumLength == 32 {
                sha256 = Digest(bytes: sum)
            } else {
                failure = SealError.openSSL(.library, "cannot finish the SHA-256 of \(temporary)")
            }
        }
        let size = Int(BIO_number_written(sink))
        if failure == nil && durable && fsync(fd) != 0 {
            failure = SealError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        if failure == nil && rename(temporary, path) != 0 {
            failure = SealError(.io, "cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
        }
        if let failure {
            abandon()
            throw failure
        }
        release()
        return (size, sha256)
    }

    func abandon() {
        guard !done else { return }
        release()
        unlink(temporary)
    }

    private func release() {
        guard !done else { return }
        done = true
        BIO_free_all(bio)
        close(fd)
    }
}

// X.509 recipient certificates and private keys (OpenSSL).

internal import COpenSSL
import FoundationEssentials
import Glibc

/// Reads a whole (small) file: certificates, keys.
func readSmallFile(_ path: String, what: String, limit: Int = 1 << 20) throws(SealError) -> [UInt8] {
    guard let file = ReadOnlyFile(path: path) else {
        var st = stat()
        let reason = stat(path, &st) != 0 ? "no such file"
            : (st.st_mode & S_IFMT) != S_IFREG ? "not a regular file" : "permission denied"
        throw SealError(.unreadableKeyMaterial, "cannot read \(what) \(path): \(reason)")
    }
    guard let data = file.read(at: 0, upTo: limit + 1) else {
        throw SealError(.unreadableKeyMaterial, "cannot read \(what) \(path): \(String(cString: strerror(errno)))")
    }
    guard data.count <= limit else {
        throw SealError(.unreadableKeyMaterial, "\(what) \(path) is larger than \(limit) bytes: not a key file")
    }
    return data
}

/// Owns a memory BIO over bytes that outlive it.
func withMemoryBIO<R>(_ bytes: [UInt8], _ body: (OpaquePointer) throws(SealError) -> R) throws(SealError) -> R {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
    defer { copy.deallocate() }
    bytes.withUnsafeBytes { copy.copyMemory(from: $0) }
    guard let bio = BIO_new_mem_buf(copy.baseAddress, Int32(bytes.count)) else {
        throw SealError.openSSL(.library, "BIO_new_mem_buf failed")
    }
    defer { BIO_free(bio) }
    return try body(bio)
}

/// An X.509 certificate whose public key receives CMS-encrypted objects.
public final class Certificate: @unchecked Sendable {
    let x509: OpaquePointer

    init(owning x509: OpaquePointer) { self.x509 = x509 }
    deinit { X509_free(x509) }

    /// Parses a PEM or DER certificate.
    /// - Throws: `SealError.unreadableKeyMaterial` if it is neither.
    public convenience init(bytes: [UInt8], source: String = "certificate") throws(SealError) {
        let x: OpaquePointer? = try withMemoryBIO(bytes) { bio throws(SealError) in
            if bytes.starts(with: Array("-----BEGIN".utf8)) || bytes.contains(UInt8(ascii: "-")) && bytes.first != 0x30 {
                return PEM_read_bio_X509(bio, nil, nil, nil)
            }
            return d2i_X509_bio(bio, nil)
        }
        guard let x else {
            throw SealError.openSSL(.unreadableKeyMaterial, "\(source) is not a PEM or DER X.509 certificate")
        }
        self.init(owning: x)
    }

    /// Reads a certificate file (PEM or DER).
    public convenience init(contentsOf path: String) throws(SealError) {
        try self.init(bytes: readSmallFile(path, what: "certificate"), source: "certificate \(path)")
    }

    /// The subject, one line in OpenSSL's form (e.g. `/CN=fbk operator`).
    public var subject: String {
        guard let name = X509_get_subject_name(x509), let p = X509_NAME_oneline(name, nil, 0) else { return "?" }
        defer { COpenSSL_free(p) }
        return String(cString: p)
    }

    /// SHA-256 over the DER encoding, as 64 hex digits.
    public var fingerprint: String {
        var der: UnsafeMutablePointer<UInt8>?
        let n = i2d_X509(x509, &der)
        guard n > 0, let der else { return "" }
        defer { COpenSSL_free(der) }
        return SHA256.hash(UnsafeRawBufferPointer(start: der, count: Int(n))).hex
    }

    /// The key, described for people: "RSA 4096", "EC P-384".
    public var keyDescription: String {
        guard let key = X509_get0_pubkey(x509) else { return "no key" }
        return describeKey(key)
    }

    /// PEM text of the certificate.
    public var pem: String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        PEM_write_bio_X509(bio, x509)
        var p: UnsafeMutablePointer<CChar>?
        let n = COpenSSL_BIO_get_mem_data(bio, &p)
        guard let p else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// Checks that fbk may encrypt to this certificate: RSA of at least
    /// 3072 bits (key transport with RSAES-OAEP), or EC on P-256, P-384 or
    /// P-521 (key agreement).
    /// - Throws: `SealError.unusableCertificate` saying why not.
    public func checkUsableAsRecipient() throws(SealError) {
        guard let key = X509_get0_pubkey(x509) else {
            throw SealError.openSSL(.unusableCertificate, "certificate \(subject) has no readable public key")
        }
        switch EVP_PKEY_get_base_id(key) {
        case EVP_PKEY_RSA:
            let bits = EVP_PKEY_get_bits(key)
            guard bits >= 3072 else {
                throw SealError(.unusableCertificate,
                                "certificate \(subject) has a \(bits)-bit RSA key; fbk needs at least 3072 bits (make a new one with fbk keygen)")
            }
        case EVP_PKEY_EC:
            let curve = groupName(key)
            guard ["P-256", "P-384", "P-521", "prime256v1", "secp384r1", "secp521r1"].contains(curve) else {
                throw SealError(.unusableCertificate,
                                "certificate \(subject) uses EC curve \(curve); fbk accepts P-256, P-384 and P-521")
            }
        default:
            throw SealError(.unusableCertificate,
                            "certificate \(subject) has a \(describeKey(key)) key, which cannot receive CMS-encrypted data; use an RSA (3072 bits or more) or EC P-256/P-384 certificate (fbk keygen makes one)")
        }
    }
}

func groupName(_ key: OpaquePointer) -> String {
    var name = [CChar](repeating: 0, count: 64)
    var length = 0
    guard EVP_PKEY_get_group_name(key, &name, name.count, &length) == 1 else { return "unknown" }
    return name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

func describeKey(_ key: OpaquePointer) -> String {
    switch EVP_PKEY_get_base_id(key) {
    case EVP_PKEY_RSA: "RSA \(EVP_PKEY_get_bits(key))"
    case EVP_PKEY_EC:
        switch groupName(key) {
        case "prime256v1": "EC P-256"
        case "secp384r1": "EC P-384"
        case "secp521r1": "EC P-521"
        case let other: "EC \(other)"
        }
    default:
        if let n = EVP_PKEY_get0_type_name(key) { String(cString: n) } else { "unknown" }
    }
}

/// The operator's private key, loaded for decryption.
public final class PrivateKey: @unchecked Sendable {
    let pkey: OpaquePointer

    init(owning pkey: OpaquePointer) { self.pkey = pkey }
    deinit { EVP_PKEY_free(pkey) }

    /// Reads a PEM private key (PKCS#8, encrypted or not).
    /// - Parameters:
    ///   - passphrase: the passphrase for an encrypted key; nil if none was given.
    /// - Throws: `SealError.wrongPassphrase` if the passphrase does not open
    ///   it, `.unreadableKeyMaterial` if the file is not a private key or a
    ///   passphrase is needed but none was given.
    public convenience init(contentsOf path: String, passphrase: [UInt8]?) throws(SealError) {
        let bytes = try readSmallFile(path, what: "private key")
        let encrypted = bytes.starts(with: Array("-----BEGIN ENCRYPTED PRIVATE KEY".utf8))
            || String(decoding: bytes, as: UTF8.self).contains("Proc-Type: 4,ENCRYPTED")
        if encrypted && passphrase == nil {
            throw SealError(.unreadableKeyMaterial,
                            "private key \(path) is encrypted: give its passphrase (prompt, --passphrase-file or FBK_PASSPHRASE)")
        }
        // NUL-terminated copy, wiped after use.
        var secret: [CChar] = (passphrase ?? []).map { CChar(bitPattern: $0) } + [0]
        defer { for i in secret.indices { secret[i] = 0 } }
        let key: OpaquePointer? = try withMemoryBIO(bytes) { bio throws(SealError) in
            secret.withUnsafeMutableBufferPointer { s in
                PEM_read_bio_PrivateKey(bio, nil, { buf, size, _, u in
                    // Copies the passphrase in; never prompts on a terminal.
                    guard let buf, let u else { return -1 }
                    let p = u.assumingMemoryBound(to: CChar.self)
                    let n = min(Int(strlen(p)), Int(size))
                    memcpy(buf, p, n)
                    return Int32(n)
                }, s.baseAddress)
            }
        }
        guard let key else {
            let errors = OpenSSLErrors.drain()
            // A wrong passphrase usually fails the padding check ("bad
            // decrypt"); about one time in 256 the padding passes and the
            // garbage fails to parse instead. An intact encrypted PKCS#8
            // container that does not open means the same either way,
            // unless OpenSSL cannot do its cipher or key type.
            let intactContainer = (try? withMemoryBIO(bytes) { bio throws(SealError) in
                guard let sig = PEM_read_bio_PKCS8(bio, nil, nil, nil) else { return false }
                X509_SIG_free(sig)
                return true
            }) ?? false
            _ = OpenSSLErrors.drain()
            // A cipher OpenSSL cannot fetch (one only its legacy provider
            // has); a decoder finding nothing in garbage says "unsupported" too.
            let unsupported = errors.text.contains("digital envelope routines") && errors.text.contains("unsupported")
            if encrypted && !unsupported && (intactContainer || errors.text.contains("bad decrypt") || errors.text.contains("cipherfinal")) {
                throw SealError(.wrongPassphrase, "wrong passphrase for private key \(path)")
            }
            throw SealError(.unreadableKeyMaterial, "\(path) is not a PEM private key", detail: errors.text)
        }
        self.init(owning: key)
    }

    /// Whether `certificate` carries this key's public half.
    public func matches(_ certificate: Certificate) -> Bool {
        let ok = X509_check_private_key(certificate.x509, pkey) == 1
        _ = OpenSSLErrors.drain()
        return ok
    }

    /// The key, described for people: "RSA 4096", "EC P-384".
    public var keyDescription: String { describeKey(pkey) }
}

/// Key types `fbk keygen` makes.
public enum KeyType: String, CaseIterable, Sendable {
    case rsa4096
    case p384
}

/// A freshly generated key pair, as PEM text.
public struct GeneratedKeyPair: Sendable {
    /// The self-signed certificate: the only thing clients receive.
    public let certificatePEM: String
    /// The private key as encrypted PKCS#8 (PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC).
    public let privateKeyPEM: String
}

/// PBKDF2 iterations for private-key files (OWASP's 2023 figure for
/// PBKDF2-HMAC-SHA256).
public let privateKeyKDFIterations: Int32 = 600_000

/// Makes a key pair for the operator.
/// - Parameters:
///   - subject: `CN=…` pieces in OpenSSL's `/CN=x/O=y` form, or plain text used as the CN.
///   - passphrase: encrypts the private key; must not be empty.
///   - validityDays: how long the certificate is valid.
/// - Throws: `SealError` if OpenSSL fails or the arguments are invalid.
public func generateKeyPair(type: KeyType, subject: String, passphrase: [UInt8],
                            validityDays: Int = 365 * 30) throws(SealError) -> GeneratedKeyPair {
    guard !passphrase.isEmpty else { throw SealError(.invalidArgument, "the private key's passphrase must not be empty") }
    let made: OpaquePointer? = switch type {
    case .rsa4096: COpenSSL_EVP_RSA_gen(4096)
    case .p384: "P-384".withCString { COpenSSL_EVP_EC_gen($0) }
    }
    guard let pkey = made else { throw SealError.openSSL(.library, "key generation failed") }
    defer { EVP_PKEY_free(pkey) }

    guard let x = X509_new() else { throw SealError.openSSL(.library, "X509_new failed") }
    defer { X509_free(x) }
    var ok = X509_set_version(x, 2) == 1
    var serial = secureRandomBytes(8)
    serial[0] &= 0x7F
    ok = ok && ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial.reduce(0) { $0 << 8 | UInt64($1) }) == 1
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), 0) != nil
    ok = ok && X509_gmtime_adj(X509_getm_notAfter(x), validityDays * 86_400) != nil
    ok = ok && X509_set_pubkey(x, pkey) == 1
    let name = X509_get_subject_name(x)
    for (field, value) in parseSubject(subject) {
        ok = ok && X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, value, -1, -1, 0) == 1
    }
    ok = ok && X509_set_issuer_name(x, name) == 1
    guard ok else { throw SealError.openSSL(.invalidArgument, "cannot build the certificate (subject \"\(subject)\")") }

    var ctx = X509V3_CTX()
    X509V3_set_ctx(&ctx, x, x, nil, nil, 0)
    let usage = type == .rsa4096 ? "critical,keyEncipherment,dataEncipherment" : "critical,keyAgreement"
    for (nid, value) in [(NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, usage),
                         (NID_subject_key_identifier, "hash")] {
        guard let ext = X509V3_EXT_conf_nid(nil, &ctx, nid, value) else {
            throw SealError.openSSL(.library, "cannot add certificate extension \(value)")
        }
        defer { X509_EXTENSION_free(ext) }
        guard X509_add_ext(x, ext, -1) == 1 else { throw SealError.openSSL(.library, "X509_add_ext failed") }
    }
    guard X509_sign(x, pkey, EVP_sha256()) > 0 else { throw SealError.openSSL(.library, "cannot sign the certificate") }

    let certificate = Certificate(owning: X509_dup(x)!)

    // Encrypted PKCS#8 with an explicit PBKDF2 iteration count.
    guard let p8 = EVP_PKEY2PKCS8(pkey) else { throw SealError.openSSL(.library, "EVP_PKEY2PKCS8 failed") }
    defer { PKCS8_PRIV_KEY_INFO_free(p8) }
    var salt = secureRandomBytes(16)
    var iv = secureRandomBytes(16)
    guard let pbe = PKCS5_pbe2_set_iv_ex(EVP_aes_256_cbc(), privateKeyKDFIterations, &salt, 16, &iv,
                                         NID_hmacWithSHA256, nil) else {
        throw SealError.openSSL(.library, "cannot set up key encryption")
    }
    let sig: OpaquePointer? = passphrase.withUnsafeBufferPointer { p in
        p.withMemoryRebound(to: CChar.self) { PKCS8_set0_pbe($0.baseAddress, Int32($0.count), p8, pbe) }
    }
    guard let sig else {
        X509_ALGOR_free(pbe)
        throw SealError.openSSL(.library, "cannot encrypt the private key")
    }
    defer { X509_SIG_free(sig) }
    guard let bio = BIO_new(BIO_s_mem()) else { throw SealError.openSSL(.library, "BIO_new failed") }
    defer { BIO_free(bio) }
    guard PEM_write_bio_PKCS8(bio, sig) == 1 else { throw SealError.openSSL(.library, "cannot write the private key") }
    var p: UnsafeMutablePointer<CChar>?
    let n = COpenSSL_BIO_get_mem_data(bio, &p)
    let keyPEM = String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
    return GeneratedKeyPair(certificatePEM: certificate.pem, privateKeyPEM: keyPEM)
}

/// "/CN=a/O=b" → [("CN","a"),("O","b")]; anything else is one CN.
func parseSubject(_ subject: String) -> [(String, String)] {
    guard subject.hasPrefix("/") else { return [("CN", subject)] }
    return subject.split(separator: "/").compactMap { part in
        let pieces = part.split(separator: "=", maxSplits: 1)
        guard pieces.count == 2 else { return nil }
        return (String(pieces[0]), String(pieces[1]))
    }
}

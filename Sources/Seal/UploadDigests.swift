// The digests an S3 upload carries (FORMAT.md 2, "S3-compatible storage"):
// SHA-256 of the bytes, signed with the request (x-amz-content-sha256), and
// their MD5 (Content-MD5), which S3 demands of every write to a bucket with
// Object Lock. MD5 here guards the transfer only; nothing in fbk trusts it.

internal import COpenSSL
import FoundationEssentials
import Glibc

public enum UploadDigests {
    nonisolated(unsafe) private static let md5: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "MD5", nil) else { fatalError("OpenSSL provides no MD5: \(OpenSSLErrors.drain().text)") }
        return md
    }()

    /// SHA-256 and MD5 of bytes `range` of a file, read once in 1 MiB pieces.
    /// - Throws: `SealError` (`.io`) if the file cannot be read or is shorter.
    public static func of(fileAt path: String, range: Range<Int>) throws(SealError) -> (sha256: Digest, md5: [UInt8]) {
        let sha = SHA256()
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        precondition(EVP_DigestInit_ex2(ctx, md5, nil) == 1, "EVP_DigestInit_ex2 failed")
        try forEachPiece(ofFileAt: path, range: range) { piece in
            sha.update(piece)
            precondition(EVP_DigestUpdate(ctx, piece.baseAddress, piece.count) == 1, "EVP_DigestUpdate failed")
        }
        var out = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(ctx, &out, &length) == 1 && length == 16, "EVP_DigestFinal_ex failed")
        return (sha.finalize(), out)
    }
}

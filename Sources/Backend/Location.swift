// From what an operator writes (a URL in fbk.conf, a --from value) to a
// backend: the scheme picks the implementation, the options its timeouts.

import FoundationEssentials
import Glibc
import Platform

/// Timeouts and retries for network backends.
public struct MirrorOptions: Sendable {
    /// Seconds to wait for a TCP connection.
    public var connectTimeout = 10
    /// A transfer slower than `lowSpeedLimit` bytes/s for this many seconds is abandoned.
    public var lowSpeedTime = 30
    public var lowSpeedLimit = 1024
    /// Delays before the 2nd, 3rd … attempt after a transient failure (5xx, timeout, reset).
    public var retryDelays: [Double] = [1, 2, 4]
    /// Shared by every mirror of a run (`upload_limit`); nil: no limit.
    public var uploadLimiter: UploadLimiter?

    public init() {}
}

/// The backend a client's mirror URL names: `http(s)://` (WebDAV, with
/// retries), `s3://` (with its `s3` settings, with retries) or `file://`
/// (a directory). Upload account only.
public func makeMirror(url: String, user: String?, passwordFile: String?, s3: S3Settings? = nil, options: MirrorOptions) throws(StoreError) -> any Backend {
    if url.hasPrefix("file://") {
        return try DirectoryBackend(url: url)
    }
    if url.hasPrefix("s3://") {
        guard let s3 else { throw StoreError(.config, "mirror \(url) needs endpoint and credentials_file") }
        return RetryingBackend(try S3Backend(url: url, settings: s3, reads: false, options: options), delays: options.retryDelays)
    }
    if url.hasPrefix("http://") || url.hasPrefix("https://") {
        return RetryingBackend(try WebDAVBackend(url: url, user: user, passwordFile: passwordFile, options: options),
                               delays: options.retryDelays)
    }
    throw StoreError(.config, "mirror URL \(url) must start with http://, https://, s3:// or file://")
}

/// The backend an operator's `--from` names for one client: a storage
/// root's URL on the operator port (http/https), a bucket and prefix
/// (`s3://`, with operator credentials in `s3`), or a storage root on
/// local disk.
public func makeReader(from location: String, client: String, user: String?, passwordFile: String?, s3: S3Settings? = nil) throws(StoreError) -> any Backend {
    if location.hasPrefix("s3://") {
        guard let s3 else { throw StoreError(.config, "\(location): give --s3-endpoint and --s3-credentials (operator credentials, deploy/s3/operator-policy.json)") }
        return try S3Backend(storageRoot: location, client: client, settings: s3)
    }
    if location.hasPrefix("http://") || location.hasPrefix("https://") {
        return try WebDAVBackend(storageRoot: location, client: client, user: user, passwordFile: passwordFile)
    }
    if location.hasPrefix("file://") {
        return try DirectoryBackend(storageRoot: String(location.dropFirst("file://".count)), client: client)
    }
    return try DirectoryBackend(storageRoot: location, client: client)
}

/// Reads a password file: its first line, without the newline (or, with
/// `wholeFile`, all of it: an S3 credentials file).
/// - Parameter mustBePrivate: refuse a file others can read (a client's WebDAV password or S3 key).
package func readPasswordFile(_ path: String, for what: String, mustBePrivate: Bool, wholeFile: Bool = false) throws(StoreError) -> String {
    let data = try readOperatorFile(path, limit: 65_536, what: wholeFile ? "credentials file" : "password file",
                                    for: what.isEmpty ? nil : what)
    var st = stat()
    if mustBePrivate, stat(path, &st) == 0, st.st_mode & 0o077 != 0 {
        throw StoreError(.config, "the password file \(path) is readable by others; chmod 600 it")
    }
    let text = String(decoding: data, as: UTF8.self)
    return wholeFile ? text : text.trimmingNewlines()
}

/// Where a mirror URL points, for telling two spellings of one mirror
/// apart from two mirrors: scheme and host compared without case, the
/// scheme's default port dropped, and the path without trailing slashes
/// or repeated ones.
package struct MirrorIdentity: Equatable {
    let scheme: String
    let authority: String
    let path: String

    package init(_ url: String) {
        guard let colon = url.firstRange(of: "://") else {
            (scheme, authority, path) = ("", "", url)
            return
        }
        scheme = url[..<colon.lowerBound].lowercased()
        let rest = url[colon.upperBound...]
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        var host = rest[..<slash].lowercased()
        if let userEnd = host.lastIndex(of: "@") { host = String(host[host.index(after: userEnd)...]) }
        for (s, port) in [("http", ":80"), ("https", ":443")] where scheme == s && host.hasSuffix(port) {
            host.removeLast(port.count)
        }
        authority = host
        path = "/" + rest[slash...].split(separator: "/").joined(separator: "/")
    }
}

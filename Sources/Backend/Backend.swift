// Mirrors: where a client's objects go. Each is named by the URL of the
// client's own directory on it. The contract is create-only: `put` never
// overwrites, renames or deletes, and repeating a `put` is harmless.
// A client never reads anything back from a mirror.

import Foundation
import Format
import Platform

/// The result of a successful upload.
public enum PutOutcome: Sendable, Equatable {
    /// The object was created.
    case stored
    /// An object of that name was already there. Names are content hashes
    /// (or unique snapshot IDs), so it holds the same bytes.
    case alreadyPresent
}

/// A failed upload: what the mirror did, and whether trying again can help.
public struct MirrorFailure: Error, CustomStringConvertible, Sendable {
    public let mirror: String
    public let message: String
    /// True when retrying cannot help (wrong password, forbidden, full).
    public let permanent: Bool
    /// True when the mirror refuses this client as configured (401, 403, a
    /// wrong directory or scheme): nothing reaches it until the
    /// configuration or the server is fixed. A mirror that is down or full
    /// is not misconfigured.
    public var misconfigured = false
    /// True when the mirror accepted the connection and then said nothing
    /// for the stall timeout: down for the rest of the run, not retried.
    public var silent = false

    public init(mirror: String, message: String, permanent: Bool, misconfigured: Bool = false) {
        self.mirror = mirror
        self.message = message
        self.permanent = permanent
        self.misconfigured = misconfigured
    }

    public var description: String { "\(mirror): \(message)" }
}

/// One destination for a client's objects.
public protocol Mirror: Sendable {
    /// The client's directory on the mirror, as configured.
    var url: String { get }
    /// Uploads the file at `localPath` as `relativePath` under the client's directory.
    /// Create-only; safe to repeat.
    func put(_ relativePath: String, from localPath: String, size: Int) throws(MirrorFailure) -> PutOutcome
}

/// Timeouts and retries for network mirrors.
public struct MirrorOptions: Sendable {
    /// Seconds to wait for a TCP connection.
    public var connectTimeout = 10
    /// A transfer slower than `lowSpeedLimit` bytes/s for this many seconds is abandoned.
    public var lowSpeedTime = 30
    public var lowSpeedLimit = 1024
    /// Delays before the 2nd, 3rd … attempt after a transient failure (5xx, timeout, reset).
    public var retryDelays: [Double] = [1, 2, 4]

    public init() {}
}

/// Makes the mirror a URL names: `http(s)://` (WebDAV) or `file://` (a directory).
public func makeMirror(url: String, user: String?, passwordFile: String?, options: MirrorOptions) throws(StoreError) -> any Mirror {
    if url.hasPrefix("file://") {
        return try DirectoryMirror(url: url)
    }
    if url.hasPrefix("http://") || url.hasPrefix("https://") {
        return try WebDAVMirror(url: url, user: user, passwordFile: passwordFile, options: options)
    }
    throw StoreError(.config, "mirror URL \(url) must start with http://, https:// or file://")
}

/// Reads a password file: its first line, without the newline.
/// - Parameter mustBePrivate: refuse a file others can read (a client's WebDAV password).
func readPasswordFile(_ path: String, for what: String, mustBePrivate: Bool) throws(StoreError) -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw StoreError(.config, "cannot read the password file \(path)\(what.isEmpty ? "" : " for " + what)")
    }
    var st = stat()
    if mustBePrivate, stat(path, &st) == 0, st.st_mode & 0o077 != 0 {
        throw StoreError(.config, "the password file \(path) is readable by others; chmod 600 it")
    }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
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
        guard let colon = url.range(of: "://") else {
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

// Where an operator reads a client's objects from: a mirror's storage root
// or a copy of it. Several sources are tried in order, so an object missing
// from one mirror is taken from the other.

import Foundation
import Format
import Platform

/// Read access to one client's directory.
public protocol RepositorySource: Sendable {
    /// Where it is, for messages.
    var name: String { get }
    /// Relative paths of the objects under `directory` (e.g. "snapshots").
    func list(_ directory: String) -> [String]
    /// The object's local path (fetching it first if remote), or nil if absent.
    func localPath(of object: String) -> String?
    /// When the server received the object (its modification time), for an
    /// object `list` named; nil if unknown. Snapshots are ordered by it,
    /// never by the time a client claims.
    func receiptTime(of object: String) -> Date?
    /// Says the reader is done with an object `localPath` gave: a fetched
    /// copy is deleted, so a server listing many large objects cannot fill
    /// TMPDIR with them.
    func release(_ object: String)
}

extension RepositorySource {
    public func release(_ object: String) {}
}

/// A mirror's storage root on local disk (or a copy, or NFS).
public struct LocalRepositorySource: RepositorySource {
    public let root: String
    public let client: String
    public var name: String { root + "/" + client }

    public init(root: String, client: String) throws(StoreError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root + "/" + client, isDirectory: &isDir), isDir.boolValue else {
            throw StoreError(.config, "\(root) has no directory for client \(client)")
        }
        self.root = root
        self.client = client
    }

    public func list(_ directory: String) -> [String] {
        let dir = name + "/" + directory
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { directory + "/" + $0 }
    }

    public func localPath(of object: String) -> String? {
        // Object paths come from catalogs and records: refuse anything that could leave the client directory.
        guard !object.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }), !object.hasPrefix("/") else { return nil }
        let p = name + "/" + object
        // A regular file only: a FIFO planted under an object's name would hang a reader.
        return regularFileSize(p) != nil ? p : nil
    }

    public func receiptTime(of object: String) -> Date? {
        guard let p = localPath(of: object) else { return nil }
        var st = stat()
        guard lstat(p, &st) == 0 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec) + TimeInterval(st.st_mtim.tv_nsec) / 1e9)
    }
}

/// The source a `--from` value names: an operator WebDAV URL (http/https)
/// or a storage root on local disk.
public func makeRepositorySource(from location: String, client: String, user: String?, passwordFile: String?,
                                 cacheDirectory: String) throws -> any RepositorySource {
    if location.hasPrefix("http://") || location.hasPrefix("https://") {
        return try WebDAVRepositorySource(url: location, client: client, user: user, passwordFile: passwordFile,
                                          cacheDirectory: cacheDirectory)
    }
    return try LocalRepositorySource(root: location, client: client)
}

// A mirror's storage as an operator's command sees it: one directory per
// client, and beside them the prune trash (`.fbk-trash/CLIENT/`). On local
// disk (the weekly check on the server itself), in a bucket
// (`s3://BUCKET/PREFIX/`, with operator credentials), or on a WebDAV server
// (its operator port, or a stock server's one account).

import FoundationEssentials
import Glibc
import Platform

public protocol StorageRoot: Sendable {
    /// The root as the operator gave it, for messages.
    var location: String { get }
    /// The names directly under the root: client directories, the trash, strangers.
    func topLevel() throws(BackendError) -> [String]
    /// One client's directory, for reading (it may hold nothing).
    func client(_ name: String) throws(StoreError) -> any Backend
    /// A directory under the root that may not exist yet (`.fbk-trash/CLIENT/`), to read and, for mirror-sync's
    /// destination, to write.
    func directory(_ path: String) throws(StoreError) -> any RemovableStorage
}

/// A storage root on this machine's disk.
public struct LocalStorageRoot: StorageRoot {
    public let path: String
    public var location: String { path }

    public init(_ path: String) {
        // Relative roots are relative to the working directory, as for any command.
        self.path = URL(fileURLWithPath: path).standardizedFileURL.path
    }

    public func topLevel() throws(BackendError) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw BackendError(.permanent, location: path, "cannot list the storage root: \(describe(error))", misconfigured: true, cause: error)
        }
    }

    public func client(_ name: String) throws(StoreError) -> any Backend { try DirectoryBackend(storageRoot: path, client: name) }

    public func directory(_ relative: String) throws(StoreError) -> any RemovableStorage {
        try DirectoryBackend(url: "file://" + path + "/" + relative + (relative.hasSuffix("/") ? "" : "/"))
    }
}

/// A storage root in a bucket: `s3://BUCKET/PREFIX/`.
public struct S3StorageRoot: StorageRoot {
    public let location: String
    let settings: S3Settings

    public init(_ url: String, settings: S3Settings) throws(StoreError) {
        location = try S3Location(url).url
        self.settings = settings
    }

    public func topLevel() throws(BackendError) -> [String] {
        let root: S3Backend
        do { root = try S3Backend(directory: location, settings: settings) } catch {
            throw BackendError(.permanent, location: location, error.message, misconfigured: true, cause: error)
        }
        return try root.members(of: "").map(\.name).sorted()
    }

    public func client(_ name: String) throws(StoreError) -> any Backend {
        try S3Backend(storageRoot: location, client: name, settings: settings)
    }

    public func directory(_ relative: String) throws(StoreError) -> any RemovableStorage {
        try S3Backend(directory: location + relative + (relative.hasSuffix("/") ? "" : "/"), settings: settings)
    }
}

/// A storage root on a WebDAV server: `http(s)://HOST:PORT/`, with one
/// account for every client (deploy/nginx's operator port reads only; a
/// stock server's account usually also writes).
public struct WebDAVStorageRoot: StorageRoot {
    public let location: String
    let user: String?
    let passwordFile: String?

    public init(_ url: String, user: String?, passwordFile: String?) {
        location = url.hasSuffix("/") ? url : url + "/"
        self.user = user
        self.passwordFile = passwordFile
    }

    public func topLevel() throws(BackendError) -> [String] {
        let root: WebDAVBackend
        do { root = try WebDAVBackend(directory: location, user: user, passwordFile: passwordFile) } catch {
            throw BackendError(.permanent, location: location, error.message, misconfigured: true, cause: error)
        }
        return try root.members(of: "").map(\.name).sorted()
    }

    public func client(_ name: String) throws(StoreError) -> any Backend {
        try WebDAVBackend(storageRoot: location, client: name, user: user, passwordFile: passwordFile)
    }

    public func directory(_ relative: String) throws(StoreError) -> any RemovableStorage {
        try WebDAVBackend(directory: location + relative + (relative.hasSuffix("/") ? "" : "/"), user: user, passwordFile: passwordFile)
    }
}

/// The storage root an operator names: `s3://…` (with `s3` settings),
/// `http(s)://…` (with a WebDAV account), or a directory.
public func makeStorageRoot(_ location: String, s3: S3Settings?, user: String? = nil, passwordFile: String? = nil) throws(StoreError) -> any StorageRoot {
    if location.hasPrefix("s3://") {
        guard let s3 else { throw StoreError(.config, "\(location): give --s3-endpoint and --s3-credentials") }
        return try S3StorageRoot(location, settings: s3)
    }
    if location.hasPrefix("http://") || location.hasPrefix("https://") {
        guard user != nil, passwordFile != nil else {
            throw StoreError(.config, "\(location): give --user and --password-file (an operator account, deploy/nginx/fbk-operator.conf)")
        }
        return WebDAVStorageRoot(location, user: user, passwordFile: passwordFile)
    }
    return LocalStorageRoot(location.hasPrefix("file://") ? String(location.dropFirst("file://".count)) : location)
}

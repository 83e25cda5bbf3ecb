// A client's directory on a WebDAV server, through libcurl. Two accounts
// may be given: the client's (PUT only: deploy/nginx/fbk-dav.conf refuses
// it every read) and an operator's (GET and PROPFIND: fbk-operator.conf,
// on its own port). Every request has a timeout; an answer fbk does not
// expect counts as a failure, never as a success.

import FoundationEssentials
import Glibc
import Format
import Platform

public final class WebDAVBackend: RemovableStorage, @unchecked Sendable {
    /// One account and the URL of the client's directory it reaches.
    public struct Account: Sendable {
        /// The client's directory, ending in `/`.
        public var url: String
        public var user: String?
        public var password: String?
        /// Where the password came from, for messages.
        public var passwordFile: String?

        /// - Parameter mustBePrivate: refuse a password file others can read (a client's).
        public init(url: String, user: String?, passwordFile: String?, mustBePrivate: Bool) throws(StoreError) {
            self.url = url.hasSuffix("/") ? url : url + "/"
            self.user = user
            self.passwordFile = passwordFile
            password = try passwordFile.map { (f) throws(StoreError) in
                try readPasswordFile(f, for: "\(url)", mustBePrivate: mustBePrivate)
            }
        }
    }

    public let location: String
    let writer: Account?
    let reader: Account?
    let options: MirrorOptions
    private let scratch: PrivateDirectory

    /// The body nginx sends with its 409 when the object exists (deploy/nginx):
    /// any other 409 (e.g. a missing parent collection) is a failure.
    static let existsMarker = "fbk-object-exists"

    public init(writer: Account?, reader: Account?, options: MirrorOptions) throws(StoreError) {
        precondition(writer != nil || reader != nil)
        self.writer = writer
        self.reader = reader
        self.options = options
        location = writer?.url ?? reader!.url
        scratch = try PrivateDirectory(prefix: "fbk-webdav")
    }

    /// A client's mirror: uploads only.
    public convenience init(url: String, user: String?, passwordFile: String?, options: MirrorOptions) throws(StoreError) {
        try self.init(writer: Account(url: url, user: user, passwordFile: passwordFile, mustBePrivate: true), reader: nil, options: options)
    }

    /// An operator's view of a client's directory under a storage root
    /// (`http://[2001:db8::1]:8085/` + client), checked at once with a
    /// PROPFIND so that a wrong URL or account fails early and clearly.
    public convenience init(storageRoot: String, client: String, user: String?, passwordFile: String?) throws(StoreError) {
        let root = storageRoot.hasSuffix("/") ? storageRoot : storageRoot + "/"
        var options = MirrorOptions()
        options.retryDelays = []
        try self.init(writer: nil, reader: Account(url: root + client + "/", user: user, passwordFile: passwordFile, mustBePrivate: false),
                      options: options)
        do {
            _ = try propfind("", depth: 0)
        } catch {
            throw StoreError(.config,
                             error.kind == .notFound ? "\(location) does not exist: no such client on that server" : error.description,
                             cause: error)
        }
    }

    deinit { scratch.remove() }

    private func fail(_ kind: BackendError.Kind, _ message: String, misconfigured: Bool = false, cause: (any Error)? = nil) -> BackendError {
        BackendError(kind, location: location, message, misconfigured: misconfigured, cause: cause)
    }

    private func readingAccount() throws(BackendError) -> Account {
        guard let reader else {
            throw fail(.permanent, "this is a client's upload account, which cannot read: a client never reads back from a mirror (give an operator account with --user and --password-file)", misconfigured: true)
        }
        return reader
    }

    private func checked(_ path: String) throws(BackendError) -> String {
        guard path.isEmpty || isContainedPath(path) else { throw fail(.permanent, "\(path) is not a path under the client's directory") }
        return path.split(separator: "/").map { PercentEncoding.encode($0) }
            .joined(separator: "/")
    }

    /// Sends a request; a curl failure becomes a BackendError of the right kind.
    private func perform(_ method: String, _ account: Account, _ path: String, headers: [String] = [],
                         uploadFile: String? = nil, uploadSize: Int = 0, downloadFile: String? = nil,
                         bodyLimit: Int = 4096, downloadLimit: Int = .max) throws(BackendError) -> CurlTransfer.Response {
        do {
            return try CurlTransfer.perform(method: method, url: account.url + path, user: account.user, password: account.password,
                                            headers: headers, uploadFile: uploadFile, uploadSize: uploadSize,
                                            downloadFile: downloadFile, bodyLimit: bodyLimit, downloadLimit: downloadLimit,
                                            options: options, expectedSize: downloadLimit == .max ? 0 : min(downloadLimit, 1 << 30))
        } catch {
            if error.exceededLimit {
                throw fail(.permanent, "\(method) \(path): the server sent more than the \(downloadLimit) bytes any such object may have", cause: error)
            }
            // An unsupported scheme, a malformed URL or a TLS handshake with a plain server: the URL is wrong.
            let wrongURL = [1, 3, 35].contains(error.curlCode)
            var failure = fail(error.curlCode < 0 || wrongURL ? .permanent : .transient, "\(method) \(path) failed: \(error.message)",
                               misconfigured: wrongURL, cause: error)
            // CURLE_OPERATION_TIMEDOUT: connected, then nothing (or too little) for stall_timeout.
            failure.silent = error.curlCode == 28
            throw failure
        }
    }

    /// The failure an unexpected status means.
    private func failure(_ method: String, _ path: String, status: Int, account: Account) -> BackendError {
        switch status {
        case 404:
            return fail(.notFound, "\(path) is not there (404)")
        case 401 where method != "PUT", 403 where method != "PUT":
            return fail(.permanent, "answered HTTP \(status) to \(method) as user \(account.user ?? "(none)"): give an operator account (--user, --password-file) with read access (deploy/nginx/fbk-operator.conf, on its own port); a client's account cannot read", misconfigured: true)
        case 401:
            return fail(.permanent, "the server rejected the credentials (401) of user \(account.user ?? "(none)"): the password in \(account.passwordFile ?? "(no password_file)") is not the one in the server's htpasswd (after fbk enroll --rotate, install the bundle's new password there)", misconfigured: true)
        case 403:
            return fail(.permanent, "the mirror refused the upload (403): the URL must be this client's own directory (…/\(account.user ?? "CLIENT")/), and the account must match it", misconfigured: true)
        case 413:
            return fail(.permanent, "the mirror refused the object as too large (413): set client_max_body_size 0 in nginx", misconfigured: true)
        case 507:
            return fail(.permanent, "the mirror is out of space (507)")
        case 408, 429, 500...599:
            return fail(.transient, "the server failed (HTTP \(status)) on \(method) \(path)")
        case 423:
            // RFC 4918 11.3: locked, by a write in progress (rclone answers so to two PUTs of one name): try again later.
            return fail(.transient, "\(path) is locked on the server (423) by another write in progress")
        default:
            return fail(.permanent, "the server answered HTTP \(status) to \(method) \(path), which fbk does not expect (is the URL this client's directory on an fbk mirror?); counted as a failure", misconfigured: true)
        }
    }

    // MARK: Writing

    /// Uploads create-only, on fbk's own nginx rules and on a stock RFC 4918
    /// server alike (FORMAT.md 2, "What an answer means"): the directories
    /// on the way are made first (MKCOL) unless known, the PUT asks for
    /// creation only (`If-None-Match: *`), and each answer is read as:
    /// 201, 200, 204 stored (a 204 replaced an object of the same name,
    /// which holds the same bytes: names are content hashes or unique IDs);
    /// 409 with fbk's marker, or 412: there already; 409 without the
    /// marker or 500: a directory is missing, made again and the PUT tried
    /// once more; 403 or 405: a server that refuses overwrites this way,
    /// or an account that may not write: there already only if a PROPFIND
    /// of the name (where allowed) shows an object of the expected size.
    public func put(_ path: String, from localFile: String, size: Int) throws(BackendError) -> PutOutcome {
        guard let writer else { throw fail(.permanent, "no upload account was given for \(location)", misconfigured: true) }
        guard isContainedPath(path) else { throw fail(.permanent, "\(path) is not an object's path under the client's directory") }
        let name = try checked(path)
        try makeDirectories(for: path, account: writer)
        var response = try perform("PUT", writer, name, headers: ["If-None-Match: *"], uploadFile: localFile, uploadSize: size)
        if missesDirectory(response) || response.status == 500 {
            // A directory believed made is not there (removed on the server?): make it again, once.
            forgetDirectories(for: path)
            try makeDirectories(for: path, account: writer)
            response = try perform("PUT", writer, name, headers: ["If-None-Match: *"], uploadFile: localFile, uploadSize: size)
            // A server failing (5xx) stays a transient failure; a directory it will not make is the configuration's.
            if response.status >= 500 { throw failure("PUT", path, status: response.status, account: writer) }
            if missesDirectory(response) {
                throw fail(.permanent, "PUT \(path) was answered \(response.status) again after MKCOL of its directories: the server does not let this account create \(location)\(PathName.parent(path))/ (check its WebDAV configuration)", misconfigured: true)
            }
        }
        switch response.status {
        case 200, 201, 204:
            return .stored
        case 409, 412:
            return .alreadyPresent
        case 403, 405:
            // (A `where` would bind to 405 alone.) There already only if the server shows it, at its size.
            let shown = try? propfind(name, depth: 0, account: writer).first.map { !$0.isCollection && $0.size == size }
            if shown == true { return .alreadyPresent }
            throw failure("PUT", path, status: response.status, account: writer)
        default:
            throw failure("PUT", path, status: response.status, account: writer)
        }
    }

    /// A PUT's answer when the directory it writes into is missing (RFC 4918: 409; some servers 404).
    private func missesDirectory(_ response: CurlTransfer.Response) -> Bool {
        (response.status == 409 && !isExistsAnswer(response)) || response.status == 404
    }

    /// fbk's nginx rules answer a create of an existing name (and a MKCOL of an existing directory) 409 with a marker.
    private func isExistsAnswer(_ response: CurlTransfer.Response) -> Bool {
        response.status == 409 && String(decoding: response.body, as: UTF8.self).contains(Self.existsMarker)
    }

    // MARK: Directories

    /// Directories known to exist ("" is the client's directory), and those learned since the index was last told.
    private var knownDirectories = Set<String>()
    private var learnedDirectories = Set<String>()
    private let directoryLock = Lock()

    public func assumeDirectories(_ known: Set<String>) { directoryLock.withLock { knownDirectories.formUnion(known) } }

    public func newlyKnownDirectories() -> Set<String> {
        directoryLock.withLock {
            defer { learnedDirectories = [] }
            return learnedDirectories
        }
    }

    /// The client's directory and each directory on the way to `path`.
    private func directories(for path: String) -> [String] {
        var out = [""]
        var directory = ""
        for component in path.split(separator: "/").dropLast() {
            directory += (directory.isEmpty ? "" : "/") + component
            out.append(directory)
        }
        return out
    }

    /// MKCOL for each directory on the way not known to exist: 201 made,
    /// 405 (or fbk's 409 with the marker) there already. Any other answer
    /// leaves it unknown: the PUT that follows says what is wrong.
    private func makeDirectories(for path: String, account: Account) throws(BackendError) {
        for directory in directories(for: path) where !directoryLock.withLock({ knownDirectories.contains(directory) }) {
            var response = try perform("MKCOL", account, (directory.isEmpty ? "" : try checked(directory) + "/"))
            if directory.isEmpty && missesDirectory(response),
               let parent = URL(string: account.url)?.deletingLastPathComponent().absoluteString, parent.count < account.url.count {
                // This directory's own parent is missing too (prune's `.fbk-trash/CLIENT/` before its first run).
                var above = account
                above.url = parent
                _ = try perform("MKCOL", above, "")
                response = try perform("MKCOL", account, "")
            }
            guard response.status == 201 || response.status == 405 || isExistsAnswer(response) else { return }
            directoryLock.withLock {
                if knownDirectories.insert(directory).inserted { learnedDirectories.insert(directory) }
            }
        }
    }

    private func forgetDirectories(for path: String) {
        directoryLock.withLock { for d in directories(for: path) { knownDirectories.remove(d) } }
    }

    // MARK: Reading

    public func fetch(_ path: String, limit: Int) throws(BackendError) -> FetchedObject {
        let account = try readingAccount()
        let local = scratch.path + "/" + UUID().uuidString
        let response: CurlTransfer.Response
        do {
            response = try perform("GET", account, try checked(path), downloadFile: local, downloadLimit: limit)
        } catch {
            unlink(local)
            throw error
        }
        guard response.status == 200 else {
            unlink(local)
            throw failure("GET", path, status: response.status, account: account)
        }
        var st = Glibc.stat()
        guard lstat(local, &st) == 0 else { throw fail(.transient, "GET \(path): the download vanished") }
        return FetchedObject(path: local, size: Int(st.st_size), temporary: true)
    }

    public func fetch(_ path: String, range: Range<Int>) throws(BackendError) -> [UInt8] {
        let account = try readingAccount()
        guard !range.isEmpty else { return [] }
        let response = try perform("GET", account, try checked(path), headers: ["Range: bytes=\(range.lowerBound)-\(range.upperBound - 1)"],
                                   bodyLimit: range.count)
        switch response.status {
        case 206: return response.body
        case 416: return []
        case 200: throw fail(.permanent, "GET \(path) with a Range: the server sent the whole object (200), so it does not serve ranges")
        default: throw failure("GET", path, status: response.status, account: account)
        }
    }

    public func stat(_ path: String) throws(BackendError) -> StoredObject {
        guard let entry = try propfind(try checked(path), depth: 0).first, !entry.isCollection else {
            throw fail(.permanent, "\(path) is a collection, not an object")
        }
        return StoredObject(path: path, size: entry.size, received: entry.modified)
    }

    public func list(_ kind: ObjectKind) throws(BackendError) -> [StoredObject] {
        var directories = [kind.directory]
        if kind.isFannedOut {
            // Only the 256 names a writer makes, each once: a server repeating
            // a name must not multiply the requests, nor the packs listed.
            let fanOut = Set(try children(of: kind.directory).filter { $0.isCollection && Self.isFanOutName($0.name) }.map(\.name))
            directories = fanOut.sorted().map { kind.directory + "/" + $0 }
        }
        var out: [StoredObject] = []
        for directory in directories {
            for e in try children(of: directory) where !e.isCollection {
                let path = directory + "/" + e.name
                guard ObjectName(parsing: path)?.kind == kind else { continue }
                out.append(StoredObject(path: path, size: e.size, received: e.modified))
            }
        }
        return out.sorted { $0.path < $1.path }
    }

    /// Two lower-case hex digits: the directory of packs whose names start with them.
    static func isFanOutName(_ name: String) -> Bool {
        name.utf8.count == 2 && name.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// The most entries an inventory takes from a server (a client with 100,000 packs has about that many).
    static let maxInventory = 1_000_000

    public func inventory() throws(BackendError) -> Inventory {
        var inventory = Inventory()
        var pending = [""]
        var seen = Set<String>()
        while let directory = pending.popLast() {
            for e in try children(of: directory) {
                guard seen.insert(directory + "/" + e.name).inserted else { continue }
                guard seen.count <= Self.maxInventory else {
                    throw fail(.permanent, "the server lists more than \(Self.maxInventory) entries under \(location): not an fbk client's directory")
                }
                let path = directory.isEmpty ? e.name : directory + "/" + e.name
                if e.isCollection {
                    // Deeper than any object lives: a stranger's tree, named once.
                    if path.split(separator: "/").count > 3 { inventory.others.append(path + "/") } else { pending.append(path) }
                } else {
                    inventory.objects.append(StoredObject(path: path, size: e.size, received: e.modified))
                }
            }
        }
        inventory.objects.sort { $0.path < $1.path }
        inventory.others.sort()
        return inventory
    }

    // MARK: Removing (fbk prune, an account of deploy/nginx/fbk-prune.conf)

    /// An operator's view of any directory of a server (`fbk prune`'s trash,
    /// where it also writes its record of removals), which may not exist
    /// yet: nothing is asked until it is used.
    public convenience init(directory url: String, user: String?, passwordFile: String?) throws(StoreError) {
        var options = MirrorOptions()
        options.retryDelays = []
        let account = try Account(url: url, user: user, passwordFile: passwordFile, mustBePrivate: false)
        try self.init(writer: account, reader: account, options: options)
    }

    public func move(_ path: String, to destination: any RemovableStorage, as newPath: String) throws(BackendError) {
        guard let other = destination as? WebDAVBackend, let target = other.reader else {
            throw fail(.permanent, "cannot move \(path) to \(destination.location): not the same server")
        }
        let account = try readingAccount()
        try other.makeDirectories(for: newPath, account: target)
        let response = try perform("MOVE", account, try checked(path),
                                   headers: ["Destination: \(target.url + (try other.checked(newPath)))", "Overwrite: F"])
        switch response.status {
        case 201, 204: return
        case 412: throw fail(.alreadyExists, "MOVE \(path): \(newPath) exists on \(other.location)")
        case 403, 405:
            throw fail(.permanent, "the server refused MOVE \(path) (\(response.status)): give an account of deploy/nginx/fbk-prune.conf", misconfigured: true)
        default: throw failure("MOVE", path, status: response.status, account: account)
        }
    }

    public func delete(_ path: String) throws(BackendError) {
        let account = try readingAccount()
        var response = try perform("DELETE", account, try checked(path), headers: ["Depth: infinity"])
        // A collection's URL ends with a slash (nginx answers 409 without it).
        if response.status == 409 { response = try perform("DELETE", account, try checked(path) + "/", headers: ["Depth: infinity"]) }
        switch response.status {
        case 200, 204: return
        case 403, 405: throw fail(.permanent, "the server refused DELETE \(path) (\(response.status)): give an account of deploy/nginx/fbk-prune.conf", misconfigured: true)
        default: throw failure("DELETE", path, status: response.status, account: account)
        }
    }

    public func members(of directory: String) throws(BackendError) -> [(name: String, isDirectory: Bool)] {
        try children(of: directory).map { ($0.name, $0.isCollection) }
    }

    /// The members of a collection (none if it does not exist yet).
    private func children(of directory: String) throws(BackendError) -> [WebDAVListing.Entry] {
        do {
            return try propfind(try checked(directory) + (directory.isEmpty ? "" : "/"), depth: 1).filter { !$0.isSelf }
        } catch where error.kind == .notFound {
            return []
        }
    }

    private func propfind(_ path: String, depth: Int, account given: Account? = nil) throws(BackendError) -> [WebDAVListing.Entry] {
        let account: Account
        if let given { account = given } else { account = try readingAccount() }
        let response = try perform("PROPFIND", account, path, headers: ["Depth: \(depth)"], bodyLimit: WebDAVListing.maxBody)
        guard response.status == 207 else { throw failure("PROPFIND", path, status: response.status, account: account) }
        guard response.body.count < WebDAVListing.maxBody else {
            throw fail(.permanent, "PROPFIND \(path): the listing is larger than \(WebDAVListing.maxBody) bytes")
        }
        return WebDAVListing.parse(response.body, requestPath: URLComponents(string: account.url + path)?.percentEncodedPath ?? "")
    }
}

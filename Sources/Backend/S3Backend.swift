// A client's directory on S3-compatible object storage (AWS S3, MinIO,
// Ceph RGW, Garage, Backblaze B2): `s3://BUCKET/PREFIX/CLIENT/`, every
// request signed with AWS Signature V4 by libcurl (CURLOPT_AWS_SIGV4).
//
// Writes are create-only: every PUT carries `If-None-Match: *`, and 412
// means the name is there already. Where the bucket has Object Lock, each
// object is given a mode and a retain-until date (`ObjectLock`), after
// which no one, its administrator included (COMPLIANCE), can delete or
// replace it before that date. A client's credentials need s3:PutObject
// only (deploy/s3/client-policy.json); reading, listing and removing take
// an operator's (operator-policy.json, prune-policy.json).

import FoundationEssentials
import Glibc
import Format
import Platform
import Seal

/// How an S3 mirror is reached: the fields beside an `s3://` URL in fbk.conf
/// (README "S3-compatible mirrors"), and the `--s3-*` options of operator commands.
public struct S3Settings: Sendable, Equatable {
    /// Object Lock as each new object gets it.
    public struct ObjectLock: Sendable, Equatable {
        public enum Mode: String, Sendable {
            /// No one can shorten or remove the lock, the bucket's owner included.
            case compliance = "COMPLIANCE"
            /// Accounts with s3:BypassGovernanceRetention can (deploy/s3 denies it to fbk's).
            case governance = "GOVERNANCE"
        }
        public var mode: Mode
        /// Days from the upload (by the later of the client's and the server's clock).
        public var days: Int
        public init(mode: Mode, days: Int) { (self.mode, self.days) = (mode, days) }
    }

    /// `http(s)://HOST[:PORT]` of the service.
    public var endpoint: String
    public var region = "us-east-1"
    /// A file with `aws_access_key_id = …` and `aws_secret_access_key = …` lines.
    public var credentialsFile: String
    /// Virtual-host addressing (`BUCKET.HOST`) instead of path style (`HOST/BUCKET`).
    public var virtualHost = false
    public var objectLock: ObjectLock?
    /// Objects larger than this are sent as a multipart upload, in parts of `partSize`.
    public var multipartThreshold = 64 << 20
    public var partSize = 16 << 20

    public init(endpoint: String, region: String = "us-east-1", credentialsFile: String, virtualHost: Bool = false,
                objectLock: ObjectLock? = nil) {
        self.endpoint = endpoint
        self.region = region
        self.credentialsFile = credentialsFile
        self.virtualHost = virtualHost
        self.objectLock = objectLock
    }

    /// What is wrong with the endpoint, if anything.
    public var endpointProblem: String? {
        guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://"), let c = URLComponents(string: endpoint),
              let host = c.host, !host.isEmpty, c.path.isEmpty || c.path == "/", c.query == nil else {
            return "endpoint '\(endpoint)' must be http(s)://HOST[:PORT], e.g. https://s3.eu-central-1.amazonaws.com"
        }
        return nil
    }
}

/// An `s3://BUCKET/PREFIX/` URL taken apart.
public struct S3Location: Sendable, Equatable {
    public var bucket: String
    /// The key prefix, empty or ending in `/`.
    public var prefix: String

    public init(_ url: String) throws(StoreError) {
        guard url.hasPrefix("s3://") else { throw StoreError(.config, "\(url) is not an s3:// URL") }
        let rest = url.dropFirst("s3://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        bucket = String(rest[..<slash])
        let path = rest[slash...].split(separator: "/").map(String.init)
        guard (3...63).contains(bucket.utf8.count),
              bucket.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 46 }) else {
            throw StoreError(.config, "\(url): '\(bucket)' is not an S3 bucket name (3-63 lower-case letters, digits, '-' and '.'): write s3://BUCKET/PREFIX/")
        }
        guard path.allSatisfy({ $0 != "." && $0 != ".." }) else { throw StoreError(.config, "\(url): the prefix may not contain . or ..") }
        prefix = path.isEmpty ? "" : path.joined(separator: "/") + "/"
    }

    public var url: String { "s3://\(bucket)/\(prefix)" }
}

/// A key pair read from a credentials file.
struct S3Credentials {
    var accessKey: String
    var secretKey: String

    /// Reads `aws_access_key_id = …` / `aws_secret_access_key = …` (the
    /// ~/.aws/credentials form; `[section]` lines and `#` comments are
    /// skipped, `KEY=VALUE` without spaces and upper-case names are taken too).
    init(file: String, mustBePrivate: Bool) throws(StoreError) {
        let text = try readPasswordFile(file, for: "S3 credentials", mustBePrivate: mustBePrivate, wholeFile: true)
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let t = line.trimmingWhitespace()
            guard !t.hasPrefix("#"), !t.hasPrefix("["), let eq = t.firstIndex(of: "=") else { continue }
            fields[t[..<eq].trimmingWhitespace().lowercased()] = t[t.index(after: eq)...].trimmingWhitespace()
        }
        guard let key = fields["aws_access_key_id"] ?? fields["access_key_id"], !key.isEmpty,
              let secret = fields["aws_secret_access_key"] ?? fields["secret_access_key"], !secret.isEmpty else {
            throw StoreError(.config, "\(file) must hold two lines, aws_access_key_id = … and aws_secret_access_key = …")
        }
        accessKey = key
        secretKey = secret
    }
}

public final class S3Backend: RemovableStorage, @unchecked Sendable {
    public let location: String
    let settings: S3Settings
    let bucket: String
    /// The client's directory: a key prefix ending in `/`.
    let prefix: String
    private let credentials: S3Credentials
    private let options: MirrorOptions
    /// Whose credentials these are, for messages: a client's (upload only) or an operator's.
    private let reads: Bool
    private let scratch: PrivateDirectory
    /// The latest `Date` a server answer carried: retain-until dates count from it when it is ahead of this clock.
    private var serverClock: Date?
    private let clockLock = Lock()

    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// - Parameters:
    ///   - url: the client's directory, `s3://BUCKET/PREFIX/CLIENT/`.
    ///   - reads: operator credentials (they may read, list and remove); a client's only create.
    public init(url: String, settings: S3Settings, reads: Bool, options: MirrorOptions = MirrorOptions()) throws(StoreError) {
        let place = try S3Location(url)
        if let problem = settings.endpointProblem { throw StoreError(.config, problem) }
        guard !place.prefix.isEmpty else { throw StoreError(.config, "\(url) names a whole bucket: a mirror is a client's directory, s3://BUCKET/PREFIX/CLIENT/") }
        self.settings = settings
        bucket = place.bucket
        prefix = place.prefix
        location = place.url
        self.reads = reads
        self.options = options
        credentials = try S3Credentials(file: settings.credentialsFile, mustBePrivate: !reads)
        scratch = try PrivateDirectory(prefix: "fbk-s3")
    }

    /// An operator's view of a client's directory under a storage root
    /// (`s3://BUCKET/PREFIX/` + client), checked at once with a listing so
    /// that wrong credentials or a wrong bucket fail early and clearly.
    public convenience init(storageRoot: String, client: String, settings: S3Settings) throws(StoreError) {
        let root = storageRoot.hasSuffix("/") ? storageRoot : storageRoot + "/"
        var options = MirrorOptions()
        options.retryDelays = []
        try self.init(url: root + client + "/", settings: settings, reads: true, options: options)
        do {
            _ = try listPage(prefix: prefix, delimiter: true, token: nil, maxKeys: 1)
        } catch {
            throw StoreError(.config, error.description, cause: error)
        }
    }

    deinit { scratch.remove() }

    private func fail(_ kind: BackendError.Kind, _ message: String, misconfigured: Bool = false, cause: (any Error)? = nil) -> BackendError {
        BackendError(kind, location: location, message, misconfigured: misconfigured, cause: cause)
    }

    private func key(_ path: String) throws(BackendError) -> String {
        guard isContainedPath(path) else { throw fail(.permanent, "\(path) is not a path under the client's directory") }
        return prefix + path
    }

    // MARK: Requests

    /// The URL of a key (or of the bucket, for ""), with the query in
    /// SigV4's canonical form (sorted, encoded, `name=` for no value): libcurl
    /// signs the query as it finds it.
    func url(_ key: String, query: [(String, String)] = []) -> String {
        let scheme = settings.endpoint.hasPrefix("https://") ? "https://" : "http://"
        var host = String(settings.endpoint.dropFirst(scheme.count))
        while host.hasSuffix("/") { host.removeLast() }
        let path = PercentEncoding.encode(key, keepSlash: true)
        var out = settings.virtualHost ? scheme + bucket + "." + host + "/" + path : scheme + host + "/" + bucket + "/" + path
        if !query.isEmpty {
            out += "?" + query.map { (PercentEncoding.encode($0.0, keepSlash: false), PercentEncoding.encode($0.1, keepSlash: false)) }
                .sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        }
        return out
    }

    private func perform(_ method: String, _ key: String, query: [(String, String)] = [], headers: [String] = [],
                         payloadSHA256: String = S3Backend.emptySHA256, uploadFile: String? = nil, uploadOffset: Int = 0,
                         uploadSize: Int = 0, postBody: String? = nil, downloadFile: String? = nil,
                         bodyLimit: Int = S3XML.maxBody, downloadLimit: Int = .max) throws(BackendError) -> CurlTransfer.Response {
        let response: CurlTransfer.Response
        do {
            response = try CurlTransfer.perform(
                method: method, url: url(key, query: query),
                credentials: .sigv4(scope: "aws:amz:\(settings.region):s3", accessKey: credentials.accessKey, secretKey: credentials.secretKey),
                headers: headers + ["x-amz-content-sha256: \(payloadSHA256)"], uploadFile: uploadFile, uploadOffset: uploadOffset,
                uploadSize: uploadSize, postBody: postBody, downloadFile: downloadFile, bodyLimit: bodyLimit,
                downloadLimit: downloadLimit, options: options,
                expectedSize: downloadLimit == .max ? 0 : min(downloadLimit, 1 << 30))
        } catch {
            if error.exceededLimit {
                throw fail(.permanent, "\(method) \(key): the server sent more than the \(downloadLimit) bytes any such object may have", cause: error)
            }
            let wrongURL = [1, 3, 6, 35].contains(error.curlCode)
            var failure = fail(error.curlCode < 0 || wrongURL ? .permanent : .transient, "\(method) \(key) failed: \(error.message)",
                               misconfigured: wrongURL, cause: error)
            failure.silent = error.curlCode == 28
            throw failure
        }
        if let date = response.date { clockLock.withLock { serverClock = max(serverClock ?? date, date) } }
        return response
    }

    /// The failure an unexpected answer means, with what to do about it.
    private func failure(_ method: String, _ key: String, _ response: CurlTransfer.Response) -> BackendError {
        let s3 = S3XML.error(response.body)
        let said = s3.map { " (\($0.code): \($0.message))" } ?? ""
        let status = response.status
        switch (status, s3?.code ?? "") {
        case (404, "NoSuchBucket"):
            return fail(.permanent, "bucket \(bucket) does not exist at \(settings.endpoint)\(said)", misconfigured: true)
        case (404, _):
            return fail(.notFound, "\(key) is not there (404)")
        case (403, _) where method == "PUT" || method == "POST":
            return fail(.permanent, "\(method) \(key) refused (403)\(said): the credentials in \(settings.credentialsFile) may not write there; give them deploy/s3/client-policy.json", misconfigured: true)
        case (401, _), (403, _):
            return fail(.permanent, "\(method) \(key) refused (\(status))\(said): "
                        + (reads ? "give operator credentials (--s3-credentials) allowed deploy/s3/operator-policy.json (prune: prune-policy.json)"
                                 : "a client's credentials cannot read: a client never reads back from a mirror"), misconfigured: true)
        case (301, _), (307, _), (400, "AuthorizationHeaderMalformed"):
            return fail(.permanent, "\(method) \(key): the bucket is in another region or behind another endpoint (\(status))\(said): set region and endpoint", misconfigured: true)
        case (400, "InvalidRequest") where said.lowercased().replacing(" ", with: "").contains("objectlock"),
             (400, "MissingUploadObjectWithObjectLockHeaders"), (400, "InvalidBucketState"):
            return fail(.permanent, "\(method) \(key)\(said): the bucket has no Object Lock; enable it on the bucket (with versioning) or remove object_lock from the mirror", misconfigured: true)
        case (501, _):
            return fail(.permanent, "\(method) \(key): the server does not implement this\(said); fbk needs conditional PUT (If-None-Match: *) and, with object_lock, Object Lock", misconfigured: true)
        case (409, _), (429, _), (500...599, _):
            return fail(.transient, "\(method) \(key): HTTP \(status)\(said)")
        default:
            return fail(.permanent, "\(method) \(key): unexpected HTTP \(status)\(said)")
        }
    }

    // MARK: Writing

    /// Until when a new object is to be locked: `days` from now, by the
    /// later clock (a board whose clock is behind cannot shorten it).
    private func retainUntil() -> Date? {
        guard let lock = settings.objectLock else { return nil }
        return laterClock.addingTimeInterval(Double(lock.days) * 86_400)
    }

    /// The headers giving a new object its Object Lock.
    private func lockHeaders(_ until: Date?) -> [String] {
        guard let lock = settings.objectLock, let until else { return [] }
        return ["x-amz-object-lock-mode: \(lock.mode.rawValue)", "x-amz-object-lock-retain-until-date: \(S3XML.isoText(until))"]
    }

    private func digests(_ file: String, _ range: Range<Int>) throws(BackendError) -> (sha256: String, md5: String) {
        do {
            let d = try UploadDigests.of(fileAt: file, range: range)
            return (d.sha256.hex, Data(d.md5).base64EncodedString())
        } catch {
            throw fail(.permanent, "cannot read \(file) to upload it: \(error)", cause: error)
        }
    }

    public func put(_ path: String, from localFile: String, size: Int) throws(BackendError) -> PutOutcome {
        let key = try key(path)
        if size > settings.multipartThreshold { return try multipartPut(key, from: localFile, size: size) }
        let d = try digests(localFile, 0..<size)
        let response = try perform("PUT", key, headers: ["If-None-Match: *", "Content-MD5: \(d.md5)", "Content-Type: application/octet-stream"]
                                   + lockHeaders(retainUntil()), payloadSHA256: d.sha256, uploadFile: localFile, uploadSize: size)
        switch response.status {
        case 200, 201, 204: return .stored
        // Every fbk name is a content hash or carries 64 random bits, and only this client writes under its prefix.
        case 412: return .alreadyPresent
        default: throw failure("PUT", key, response)
        }
    }

    /// CreateMultipartUpload, one UploadPart per `partSize` bytes (each read
    /// from the spool file as it is sent), CompleteMultipartUpload with
    /// `If-None-Match: *`; abandoned uploads are aborted.
    private func multipartPut(_ key: String, from localFile: String, size: Int) throws(BackendError) -> PutOutcome {
        let until = retainUntil()
        let created = try perform("POST", key, query: [("uploads", "")], headers: ["Content-Type: application/octet-stream"] + lockHeaders(until),
                                  postBody: "")
        guard created.status == 200, S3XML.error(created.body) == nil,
              let uploadID = S3XML.first("UploadId", in: Substring(String(decoding: created.body, as: UTF8.self))), !uploadID.isEmpty else {
            throw failure("POST", key, created)
        }
        do throws(BackendError) {
            var etags: [String] = []
            var offset = 0
            while offset < size {
                let n = min(settings.partSize, size - offset)
                let d = try digests(localFile, offset..<(offset + n))
                let r = try perform("PUT", key, query: [("partNumber", String(etags.count + 1)), ("uploadId", uploadID)],
                                    headers: ["Content-MD5: \(d.md5)"], payloadSHA256: d.sha256, uploadFile: localFile,
                                    uploadOffset: offset, uploadSize: n)
                guard r.status == 200, let etag = r.headers["etag"], !etag.isEmpty else { throw failure("PUT", key, r) }
                etags.append(etag)
                offset += n
            }
            let parts = etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(Self.xmlEscaped($0.element))</ETag></Part>" }
            let body = "<CompleteMultipartUpload>" + parts.joined() + "</CompleteMultipartUpload>"
            let done = try perform("POST", key, query: [("uploadId", uploadID)], headers: ["If-None-Match: *", "Content-Type: application/xml"],
                                   payloadSHA256: SHA256.hash(Array(body.utf8)).hex, postBody: body)
            // S3 may answer 200 and put its error in the body.
            if done.status == 200, S3XML.error(done.body) == nil {
                // The lock once more, on the object itself: some servers (moto among them) drop it from the upload's creation.
                if let lock = settings.objectLock, let until { try putRetention(key, mode: lock.mode, until: until) }
                return .stored
            }
            if done.status == 412 || S3XML.error(done.body)?.code == "PreconditionFailed" {
                abort(key, uploadID)
                return .alreadyPresent
            }
            throw failure("POST", key, done)
        } catch {
            abort(key, uploadID)
            throw error
        }
    }

    /// PutObjectRetention: the same mode and date again is allowed, a shorter one never.
    private func putRetention(_ key: String, mode: S3Settings.ObjectLock.Mode, until: Date) throws(BackendError) {
        let body = Array("<Retention><Mode>\(mode.rawValue)</Mode><RetainUntilDate>\(S3XML.isoText(until))</RetainUntilDate></Retention>".utf8)
        let local = scratch.path + "/" + UUID().uuidString
        defer { unlink(local) }
        do { try DurableFile.replace(local, with: body, mode: 0o600) } catch {
            throw fail(.permanent, "cannot write \(local): \(error.message)", cause: error)
        }
        let d = try digests(local, 0..<body.count)
        let r = try perform("PUT", key, query: [("retention", "")], headers: ["Content-MD5: \(d.md5)", "Content-Type: application/xml"],
                            payloadSHA256: d.sha256, uploadFile: local, uploadSize: body.count)
        guard r.status == 200 || r.status == 204 else { throw failure("PUT (retention)", key, r) }
    }

    private func abort(_ key: String, _ uploadID: String) {
        _ = try? perform("DELETE", key, query: [("uploadId", uploadID)])
    }

    static func xmlEscaped(_ s: String) -> String {
        s.replacing("&", with: "&amp;").replacing("<", with: "&lt;")
            .replacing(">", with: "&gt;").replacing("\"", with: "&quot;")
    }

    // MARK: Reading (operator credentials)

    public func serverTime() throws(BackendError) -> Date? {
        // Any answer carries the clock, a refusal (a client may not read the bucket) included.
        try perform("HEAD", "").date
    }

    public func fetch(_ path: String, limit: Int) throws(BackendError) -> FetchedObject {
        let key = try key(path)
        let local = scratch.path + "/" + UUID().uuidString
        let response: CurlTransfer.Response
        do {
            response = try perform("GET", key, downloadFile: local, downloadLimit: limit)
        } catch {
            unlink(local)
            throw error
        }
        guard response.status == 200 else {
            // An error's body went to the file: read it back for the message.
            let body = (try? readBounded(local, limit: 4096, what: "error")) ?? []
            unlink(local)
            var r = response
            r.body = body
            throw failure("GET", key, r)
        }
        var st = Glibc.stat()
        guard lstat(local, &st) == 0 else { throw fail(.transient, "GET \(key): the download vanished") }
        return FetchedObject(path: local, size: Int(st.st_size), temporary: true)
    }

    public func fetch(_ path: String, range: Range<Int>) throws(BackendError) -> [UInt8] {
        let key = try key(path)
        guard !range.isEmpty else { return [] }
        let response = try perform("GET", key, headers: ["Range: bytes=\(range.lowerBound)-\(range.upperBound - 1)"], bodyLimit: range.count)
        switch response.status {
        case 206: return response.body
        case 416: return []
        case 200: throw fail(.permanent, "GET \(key) with a Range: the server sent the whole object (200), so it does not serve ranges")
        default:
            // The body was cut to the range's size: enough for an error's code.
            throw failure("GET", key, response)
        }
    }

    /// HEAD of one object: its size, receipt time, version and lock.
    private func head(_ key: String) throws(BackendError) -> (object: StoredObject, version: String?, retainUntil: Date?) {
        let r = try perform("HEAD", key)
        guard r.status == 200 else { throw failure("HEAD", key, r) }
        guard let size = r.headers["content-length"].flatMap({ Int($0) }), size >= 0 else {
            throw fail(.permanent, "HEAD \(key): the answer has no Content-Length")
        }
        let retain = r.headers["x-amz-object-lock-retain-until-date"].flatMap { S3XML.isoDate($0)?.0 }
        let hold = r.headers["x-amz-object-lock-legal-hold"] == "ON" ? Date.distantFuture : nil
        let version = r.headers["x-amz-version-id"].flatMap { $0 == "null" || $0.isEmpty ? nil : $0 }
        return (StoredObject(path: String(key.dropFirst(prefix.count)), size: size, received: r.headers["last-modified"].flatMap(HTTPDate.parse)),
                version, hold ?? retain)
    }

    public func stat(_ path: String) throws(BackendError) -> StoredObject {
        var o = try head(try key(path)).object
        o.path = path
        return o
    }

    func listPage(prefix: String, delimiter: Bool, token: String?, maxKeys: Int = 1000) throws(BackendError) -> S3XML.Page {
        var query = [("list-type", "2"), ("prefix", prefix), ("encoding-type", "url"), ("max-keys", String(maxKeys))]
        if delimiter { query.append(("delimiter", "/")) }
        if let token { query.append(("continuation-token", token)) }
        let r = try perform("GET", "", query: query)
        guard r.status == 200, S3XML.error(r.body) == nil else { throw failure("GET (list)", prefix, r) }
        guard r.body.count < S3XML.maxBody else { throw fail(.permanent, "the listing of \(prefix) is larger than \(S3XML.maxBody) bytes a page") }
        return S3XML.listPage(r.body)
    }

    /// The most keys a listing takes (a client with 100,000 packs has about that many).
    static let maxInventory = 1_000_000

    /// Every key under `under` (relative to the client's directory), with the
    /// key prefix removed; keys outside it (a hostile answer) are dropped.
    private func listAll(under: String, delimiter: Bool = false) throws(BackendError) -> (objects: [StoredObject], prefixes: [String]) {
        let base = prefix + under
        var objects: [StoredObject] = [], prefixes: [String] = []
        var token: String?
        var seen = Set<String>()
        repeat {
            let page = try listPage(prefix: base, delimiter: delimiter, token: token)
            for o in page.objects where o.key.hasPrefix(base) && seen.insert(o.key).inserted {
                objects.append(StoredObject(path: String(o.key.dropFirst(prefix.count)), size: o.size, received: o.modified,
                                            receivedNanoseconds: o.nanoseconds))
            }
            for p in page.prefixes where p.hasPrefix(base) && seen.insert(p).inserted { prefixes.append(String(p.dropFirst(prefix.count))) }
            guard seen.count <= Self.maxInventory else {
                throw fail(.permanent, "the server lists more than \(Self.maxInventory) keys under \(location): not an fbk client's directory")
            }
            // A token repeated would list forever.
            guard page.nextToken != token else { break }
            token = page.nextToken
        } while token != nil
        return (objects.sorted { $0.path < $1.path }, prefixes.sorted())
    }

    public func list(_ kind: ObjectKind) throws(BackendError) -> [StoredObject] {
        try listAll(under: kind.directory + "/").objects.filter { ObjectName(parsing: $0.path)?.kind == kind }
    }

    public func inventory() throws(BackendError) -> Inventory {
        var inventory = Inventory()
        for o in try listAll(under: "").objects {
            // A key S3 allows but no file system would (`a//b`, `./x`): a stranger, named.
            if isContainedPath(o.path) { inventory.objects.append(o) } else { inventory.others.append(o.path) }
        }
        return inventory
    }

    // MARK: Removing (fbk prune, deploy/s3/prune-policy.json)

    /// An operator's view of any prefix of a bucket (`fbk prune`'s trash),
    /// which may hold nothing yet.
    public convenience init(directory url: String, settings: S3Settings) throws(StoreError) {
        var options = MirrorOptions()
        options.retryDelays = []
        try self.init(url: url, settings: settings, reads: true, options: options)
    }

    /// Now, by the later of this clock and the latest server `Date` seen.
    private var laterClock: Date { max(WallClock.now(), clockLock.withLock { serverClock } ?? .distantPast) }

    /// The object's version to remove, or a `locked` failure if its retention has not expired.
    private func removable(_ key: String) throws(BackendError) -> String? {
        let h = try head(key)
        if let until = h.retainUntil, until > laterClock {
            var e = fail(.permanent, "\(key) is under Object Lock until \(S3XML.isoText(until)): it stays until then")
            e.retainedUntil = until
            throw e
        }
        return h.version
    }

    public func retainedUntil(_ path: String) throws(BackendError) -> Date? {
        let h = try head(try key(path))
        let now = laterClock
        return h.retainUntil.flatMap { $0 > now ? $0 : nil }
    }

    /// Deletes one object for good: its version, where the bucket keeps
    /// versions (a DELETE without one would only hide it behind a marker).
    private func deleteObject(_ key: String) throws(BackendError) {
        let version = try removable(key)
        let r = try perform("DELETE", key, query: version.map { [("versionId", $0)] } ?? [])
        guard r.status == 204 || r.status == 200 else { throw failure("DELETE", key, r) }
    }

    public func move(_ path: String, to destination: any RemovableStorage, as newPath: String) throws(BackendError) {
        guard let other = destination as? S3Backend, other.bucket == bucket, other.settings.endpoint == settings.endpoint else {
            throw fail(.permanent, "cannot move \(path) to \(destination.location): not the same bucket")
        }
        let source = try key(path), target = try other.key(newPath)
        let version = try removable(source)
        if try other.exists(newPath) { throw fail(.alreadyExists, "\(newPath) exists on \(other.location)") }
        var copySource = "/" + bucket + "/" + PercentEncoding.encode(source, keepSlash: true)
        if let version { copySource += "?versionId=" + PercentEncoding.encode(version, keepSlash: false) }
        let r = try other.perform("PUT", target, headers: ["x-amz-copy-source: \(copySource)", "If-None-Match: *"])
        if r.status == 412 { throw fail(.alreadyExists, "\(newPath) exists on \(other.location)") }
        guard r.status == 200, S3XML.error(r.body) == nil else { throw failure("PUT (copy)", target, r) }
        try deleteObject(source)
    }

    public func delete(_ path: String) throws(BackendError) {
        let key = try key(path)
        do {
            try deleteObject(key)
            return
        } catch where error.kind == .notFound {
            // Not an object: a "directory", every key under it.
        }
        var locked: BackendError?
        for o in try listAll(under: path + "/").objects {
            do {
                try deleteObject(prefix + o.path)
            } catch where error.retainedUntil != nil {
                if locked == nil || error.retainedUntil! > locked!.retainedUntil! { locked = error }
            }
        }
        if let locked { throw locked }
    }

    public func members(of directory: String) throws(BackendError) -> [(name: String, isDirectory: Bool)] {
        let under = directory.isEmpty ? "" : directory + "/"
        let listed = try listAll(under: under, delimiter: true)
        let directories = listed.prefixes.map { (name: String($0.dropFirst(under.count).dropLast()), isDirectory: true) }
        let objects = listed.objects.map { (name: String($0.path.dropFirst(under.count)), isDirectory: false) }
        // A listing is the server's word: only plain names.
        return (directories + objects).filter { !$0.name.isEmpty && !$0.name.contains("/") && $0.name != "." && $0.name != ".." }
    }
}

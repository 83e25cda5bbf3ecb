// Reading a client's objects over WebDAV with an operator account
// (deploy/nginx/fbk-operator.conf): PROPFIND to list, GET to fetch. Client
// accounts cannot do either.

import Foundation
import Format
import Platform

public final class WebDAVRepositorySource: RepositorySource, @unchecked Sendable {
    public let name: String
    let base: String
    let user: String?
    let password: String?
    let options: MirrorOptions
    let cache: String
    private let lock = NSLock()
    /// `getlastmodified` of every object listed so far.
    private var modified: [String: Date] = [:]

    /// - Parameters:
    ///   - url: the storage root, e.g. `http://[2001:db8::1]:8085/`.
    ///   - cacheDirectory: where fetched objects are kept during the run.
    public init(url: String, client: String, user: String?, passwordFile: String?, cacheDirectory: String) throws(StoreError) {
        let root = url.hasSuffix("/") ? url : url + "/"
        base = root + client + "/"
        name = base
        self.user = user
        password = try passwordFile.map { (f) throws(StoreError) in try readPasswordFile(f, for: "", mustBePrivate: false) }
        var o = MirrorOptions()
        o.retryDelays = []
        options = o
        cache = cacheDirectory
        try? FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        // Fail early and clearly on a wrong URL or account.
        let probe: CurlTransfer.Response
        do {
            probe = try CurlTransfer.perform(method: "PROPFIND", url: base, user: user, password: password,
                                             headers: ["Depth: 0"], options: options)
        } catch {
            throw StoreError(.config, "cannot reach \(base): \(error.message)")
        }
        guard probe.status == 207 else {
            throw StoreError(.config, "\(base) answered HTTP \(probe.status) to PROPFIND: give an operator account (--user, --password-file) with read access (deploy/nginx/fbk-operator.conf)")
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: cache) }

    public func list(_ directory: String) -> [String] {
        let url = base + directory + "/"
        guard let r = try? CurlTransfer.perform(method: "PROPFIND", url: url, user: user, password: password,
                                                headers: ["Depth: 1"], bodyLimit: 64 << 20, options: options),
              r.status == 207 else { return [] }
        let text = String(decoding: r.body, as: UTF8.self)
        let pattern = try! NSRegularExpression(pattern: "<(?:[A-Za-z0-9]+:)?href>([^<]*)</(?:[A-Za-z0-9]+:)?href>")
        let lastModified = try! NSRegularExpression(pattern: "<(?:[A-Za-z0-9]+:)?getlastmodified>([^<]*)</")
        var out: [String] = []
        // One <response> per entry: its href, then its properties.
        for part in text.components(separatedBy: "response>") {
            let whole = NSRange(part.startIndex..., in: part)
            guard let m = pattern.firstMatch(in: part, range: whole), let range = Range(m.range(at: 1), in: part) else { continue }
            let href = String(part[range]).removingPercentEncoding ?? String(part[range])
            let name = (href.hasSuffix("/") ? String(href.dropLast()) : href).split(separator: "/").last.map(String.init) ?? ""
            // Skip the directory itself; keep entries (sub-directories are listed as names too).
            if name.isEmpty || href.hasSuffix(directory + "/") { continue }
            guard !name.contains(".."), !name.hasPrefix(".") else { continue }
            out.append(directory + "/" + name)
            if let t = lastModified.firstMatch(in: part, range: whole), let tr = Range(t.range(at: 1), in: part),
               let date = Self.httpDate(String(part[tr])) {
                lock.withLock { modified[directory + "/" + name] = date }
            }
        }
        return out.sorted()
    }

    /// The most bytes any object of that kind may have (FORMAT.md 6).
    static func limit(of object: String) -> Int {
        if object.hasPrefix("packs/") { return PackFormat.maxSealedLength }
        if object.hasSuffix(".listing") { return ObjectLimits.listing }
        if object.hasPrefix("keys/") { return ObjectLimits.escrow }
        return ObjectLimits.document
    }

    public func receiptTime(of object: String) -> Date? { lock.withLock { modified[object] } }

    public func release(_ object: String) {
        unlink(cache + "/" + object.replacingOccurrences(of: "/", with: "__"))
    }

    /// An RFC 1123 date (`Sun, 06 Dec 2026 02:15:53 GMT`), as WebDAV servers give `getlastmodified`.
    static func httpDate(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard parts.count == 6, parts[5] == "GMT", let day = Int32(parts[1]), let month = months.firstIndex(of: String(parts[2])),
              let year = Int32(parts[3]) else { return nil }
        let hms = parts[4].split(separator: ":").compactMap { Int32($0) }
        guard hms.count == 3 else { return nil }
        var t = tm()
        t.tm_year = year - 1900; t.tm_mon = Int32(month); t.tm_mday = day
        t.tm_hour = hms[0]; t.tm_min = hms[1]; t.tm_sec = hms[2]
        return Date(timeIntervalSince1970: TimeInterval(timegm(&t)))
    }

    public func localPath(of object: String) -> String? {
        guard !object.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }), !object.hasPrefix("/") else { return nil }
        let local = cache + "/" + object.replacingOccurrences(of: "/", with: "__")
        if FileManager.default.fileExists(atPath: local) { return local }
        let partial = local + ".partial"
        defer { unlink(partial) }
        guard let r = try? CurlTransfer.perform(method: "GET", url: base + object, user: user, password: password,
                                                downloadFile: partial, downloadLimit: Self.limit(of: object),
                                                options: options, expectedSize: 1 << 30),
              r.status == 200 else { return nil }
        guard rename(partial, local) == 0 else { return nil }
        return local
    }
}

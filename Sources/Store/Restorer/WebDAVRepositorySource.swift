// Reading a client's objects over WebDAV with an operator account
// (deploy/nginx/fbk-operator.conf): PROPFIND to list, GET to fetch. Client
// accounts cannot do either.

import Foundation

public final class WebDAVRepositorySource: RepositorySource, @unchecked Sendable {
    public let name: String
    let base: String
    let user: String?
    let password: String?
    let options: MirrorOptions
    let cache: String
    private let lock = NSLock()

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
        var out: [String] = []
        for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            guard let range = Range(m.range(at: 1), in: text) else { continue }
            let href = String(text[range]).removingPercentEncoding ?? String(text[range])
            let name = (href.hasSuffix("/") ? String(href.dropLast()) : href).split(separator: "/").last.map(String.init) ?? ""
            // Skip the directory itself; keep entries (sub-directories are listed as names too).
            if name.isEmpty || href.hasSuffix(directory + "/") { continue }
            guard !name.contains(".."), !name.hasPrefix(".") else { continue }
            out.append(directory + "/" + name)
        }
        return out.sorted()
    }

    public func localPath(of object: String) -> String? {
        guard !object.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }), !object.hasPrefix("/") else { return nil }
        let local = cache + "/" + object.replacingOccurrences(of: "/", with: "__")
        if FileManager.default.fileExists(atPath: local) { return local }
        let partial = local + ".partial"
        defer { unlink(partial) }
        guard let r = try? CurlTransfer.perform(method: "GET", url: base + object, user: user, password: password,
                                                downloadFile: partial, options: options, expectedSize: 1 << 30),
              r.status == 200 else { return nil }
        guard rename(partial, local) == 0 else { return nil }
        return local
    }
}

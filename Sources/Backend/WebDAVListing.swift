// Reading a PROPFIND answer (RFC 4918 9.1, a 207 multistatus): for each
// member its name, whether it is a collection, its length and its
// last-modified time. The body comes from the server, so nothing in it is
// trusted: names with `/`, `.` or `..` are dropped, the size is capped by
// the caller, and an entry without a parsable length counts as empty.

import Foundation

enum WebDAVListing {
    /// The largest PROPFIND answer read (a directory of 100,000 packs is about 40 MB).
    static let maxBody = 64 << 20

    struct Entry {
        var name: String
        var isCollection: Bool
        var size: Int
        var modified: Date?
        /// The collection that was asked about, not one of its members.
        var isSelf: Bool
    }

    private static let href = try! NSRegularExpression(pattern: "<(?:[A-Za-z0-9]+:)?href>([^<]*)</(?:[A-Za-z0-9]+:)?href>")
    private static let length = try! NSRegularExpression(pattern: "<(?:[A-Za-z0-9]+:)?getcontentlength>\\s*([0-9]{1,18})\\s*</")
    private static let lastModified = try! NSRegularExpression(pattern: "<(?:[A-Za-z0-9]+:)?getlastmodified>([^<]*)</")
    private static let collection = try! NSRegularExpression(pattern: "<(?:[A-Za-z0-9]+:)?collection\\s*/>")

    /// - Parameter requestPath: the percent-encoded URL path that was asked about.
    static func parse(_ body: [UInt8], requestPath: String) -> [Entry] {
        let text = String(decoding: body, as: UTF8.self)
        let asked = normalized(requestPath)
        var out: [Entry] = []
        // One <response> per member: its href, then its properties.
        for part in text.components(separatedBy: "response>") {
            let whole = NSRange(part.startIndex..., in: part)
            func first(_ re: NSRegularExpression) -> String? {
                guard let m = re.firstMatch(in: part, range: whole), let r = Range(m.range(at: 1), in: part) else { return nil }
                return String(part[r])
            }
            guard let raw = first(href) else { continue }
            var path = raw
            // An absolute URL: keep its path.
            if let scheme = path.range(of: "://") {
                let rest = path[scheme.upperBound...]
                path = rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
            }
            let segments = path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }
            let name = segments.last ?? ""
            let isSelf = "/" + segments.joined(separator: "/") == asked
            guard isSelf || (!name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.hasPrefix(".")) else { continue }
            out.append(Entry(name: name, isCollection: collection.firstMatch(in: part, range: whole) != nil || raw.hasSuffix("/"),
                             size: first(length).flatMap { Int($0) } ?? 0,
                             modified: first(lastModified).flatMap(HTTPDate.parse), isSelf: isSelf))
        }
        return out
    }

    /// A path without trailing or repeated slashes, percent-decoded.
    private static func normalized(_ path: String) -> String {
        "/" + path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }.joined(separator: "/")
    }
}

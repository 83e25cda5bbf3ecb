// Reading a PROPFIND answer (RFC 4918 9.1, a 207 multistatus): for each
// member its name, whether it is a collection, its length and its
// last-modified time. The body comes from the server, so nothing in it is
// trusted: names with `/`, `.` or `..` are dropped, the size is capped by
// the caller, and an entry without a parsable length counts as empty.

import FoundationEssentials
import Glibc
import Platform

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

    /// - Parameter requestPath: the percent-encoded URL path that was asked about.
    static func parse(_ body: [UInt8], requestPath: String) -> [Entry] {
        let asked = normalized(requestPath)
        var out: [Entry] = []
        // One <response> per member: its href, then its properties.
        forEachPart(of: body, cutAt: Array("response>".utf8)) { part in
            guard let rawBytes = content(of: "href", in: part) else { return }
            let raw = String(decoding: rawBytes, as: UTF8.self)
            var path = Substring(raw)
            // An absolute URL: keep its path.
            if let scheme = path.firstRange(of: "://") {
                let rest = path[scheme.upperBound...]
                path = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
            }
            let segments = path.split(separator: "/").map { PercentEncoding.decode($0) ?? String($0) }
            let name = segments.last ?? ""
            let isSelf = "/" + segments.joined(separator: "/") == asked
            guard isSelf || (!name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.hasPrefix(".")) else { return }
            let lengthText = content(of: "getcontentlength", in: part).map { String(decoding: $0, as: UTF8.self).trimmingWhitespace() }
            let size = lengthText.flatMap { t in t.count <= 18 && t.utf8.allSatisfy { (48...57).contains($0) } ? Int(t) : nil } ?? 0
            out.append(Entry(name: name, isCollection: hasEmptyElement("collection", in: part) || raw.hasSuffix("/"),
                             size: size,
                             modified: content(of: "getlastmodified", in: part).flatMap { HTTPDate.parse(String(decoding: $0, as: UTF8.self)) },
                             isSelf: isSelf))
        }
        return out
    }

    /// Calls `body` with each piece of `bytes` between occurrences of
    /// `separator`, one at a time (a hostile answer of separators only
    /// costs no list of pieces).
    private static func forEachPart(of bytes: [UInt8], cutAt separator: [UInt8], _ body: (ArraySlice<UInt8>) -> Void) {
        var start = 0
        var i = 0
        while i + separator.count <= bytes.count {
            if bytes[i] == separator[0] && bytes[i ..< i + separator.count].elementsEqual(separator) {
                body(bytes[start ..< i])
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        body(bytes[start...])
    }

    /// The first start tag `<NAME` or `<PREFIX:NAME` (any namespace prefix)
    /// in `part` for which `accept`, given the index just past its name,
    /// returns a value; that value.
    private static func firstTag<T>(_ name: String, in part: ArraySlice<UInt8>, _ accept: (Int) -> T?) -> T? {
        let local = Array(name.utf8)
        var i = part.startIndex
        while let lt = part[i...].firstIndex(of: UInt8(ascii: "<")) {
            var j = lt + 1
            let nameStart = j
            while j < part.endIndex, isNameByte(part[j]) { j += 1 }
            var tag = part[nameStart ..< j]
            if let colon = tag.firstIndex(of: UInt8(ascii: ":")) { tag = tag[(colon + 1)...] }
            if tag.elementsEqual(local) && !part[nameStart ..< j].isEmpty, let found = accept(j) { return found }
            i = j > lt + 1 ? j : lt + 1
        }
        return nil
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        (0x41...0x5a).contains(b) || (0x61...0x7a).contains(b) || (0x30...0x39).contains(b) || b == UInt8(ascii: ":")
    }

    /// The text of the first `<NAME>TEXT</…>` (TEXT without markup).
    private static func content(of name: String, in part: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        firstTag(name, in: part) { end in
            guard end < part.endIndex && part[end] == UInt8(ascii: ">") else { return nil }
            let start = end + 1
            guard let close = part[start...].firstIndex(of: UInt8(ascii: "<")),
                  close + 1 < part.endIndex, part[close + 1] == UInt8(ascii: "/") else { return nil }
            return part[start ..< close]
        }
    }

    /// Whether `part` holds an empty element `<NAME/>` (white space allowed before `/>`).
    private static func hasEmptyElement(_ name: String, in part: ArraySlice<UInt8>) -> Bool {
        firstTag(name, in: part) { end -> Bool? in
            var k = end
            while k < part.endIndex, [0x20, 0x09, 0x0a, 0x0d].contains(part[k]) { k += 1 }
            return k + 1 < part.endIndex && part[k] == UInt8(ascii: "/") && part[k + 1] == UInt8(ascii: ">") ? true : nil
        } ?? false
    }

    /// A path without trailing or repeated slashes, percent-decoded.
    private static func normalized(_ path: String) -> String {
        "/" + path.split(separator: "/").map { PercentEncoding.decode($0) ?? String($0) }.joined(separator: "/")
    }
}

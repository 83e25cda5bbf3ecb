// Text helpers FoundationEssentials does not have (String(cFormat:),
// NSString's path methods, trimmingCharacters): small, and spelled the
// way the rest of fbk reads them.

import FoundationEssentials
import Glibc

extension String {
    /// printf-style formatting of numbers (`%.1f`, `%04ld`, `%02X`) without
    /// Foundation: C's vsnprintf. Pass `Int` with `%ld`.
    package init(cFormat format: String, _ arguments: CVarArg...) {
        let needed = withVaList(arguments) { vsnprintf(nil, 0, format, $0) }
        guard needed > 0 else { self = ""; return }
        var buffer = [CChar](repeating: 0, count: Int(needed) + 1)
        _ = withVaList(arguments) { vsnprintf(&buffer, buffer.count, format, $0) }
        self = String(decoding: buffer.prefix(Int(needed)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Path arithmetic on strings, as NSString did it: `/a/b` → `/a` and `b`.
package enum PathName {
    /// The directory part: `/a/b` → `/a`, `/a` → `/`, `b` → `""`; trailing slashes ignored.
    package static func parent(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "" }
        if slash == p.startIndex { return "/" }
        var head = p[..<slash]
        while head.count > 1 && head.hasSuffix("/") { head = head.dropLast() }
        return String(head)
    }

    /// The last component: `/a/b` → `b`, `/a/b/` → `b`, `/` → `/`.
    package static func name(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/"), p.count > 1 else { return String(p) }
        return String(p[p.index(after: slash)...])
    }
}

extension StringProtocol {
    /// Without leading and trailing white space (spaces, tabs, line breaks).
    package func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = lastIndex(where: { !$0.isWhitespace })!
        return String(self[first...last])
    }

    /// Without leading and trailing line breaks (a secret read from a file
    /// keeps its spaces).
    package func trimmingNewlines() -> String {
        guard let first = firstIndex(where: { !$0.isNewline }) else { return "" }
        let last = lastIndex(where: { !$0.isNewline })!
        return String(self[first...last])
    }
}

/// Percent-encoding of URL paths and query values (RFC 3986).
package enum PercentEncoding {
    /// RFC 3986 unreserved characters stay; every other byte becomes %XX
    /// (also SigV4's URI encoding). `/` stays when `keepSlash`.
    package static func encode(_ s: some StringProtocol, keepSlash: Bool = false) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            switch b {
            case 0x41...0x5a, 0x61...0x7a, 0x30...0x39, 0x2d, 0x2e, 0x5f, 0x7e: out.append(b)
            case 0x2f where keepSlash: out.append(b)
            default: out += [0x25, hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// %XX sequences decoded; nil when one is malformed or the result is not UTF-8.
    package static func decode(_ s: some StringProtocol) -> String? {
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x41...0x46: c - 0x41 + 10
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        let bytes = Array(s.utf8)
        guard bytes.contains(0x25) else { return String(s) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x25 {
                guard i + 2 < bytes.count, let h = value(bytes[i + 1]), let l = value(bytes[i + 2]) else { return nil }
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }
}

/// What an error says, for a message: a file-system error as its path and
/// the system's reason ("/x: No such file or directory"), anything else
/// as it describes itself.
package func describe(_ error: any Error) -> String {
    if let e = error as? CocoaError {
        let reason: String
        if let posix = e.underlying as? POSIXError {
            reason = String(cString: strerror(posix.code.rawValue))
        } else {
            switch e.code {
            case .fileNoSuchFile, .fileReadNoSuchFile: reason = String(cString: strerror(ENOENT))
            case .fileReadNoPermission, .fileWriteNoPermission: reason = String(cString: strerror(EACCES))
            case .fileReadInapplicableStringEncoding, .fileReadUnknownStringEncoding: reason = "not UTF-8 text"
            case .fileWriteFileExists: reason = String(cString: strerror(EEXIST))
            case .fileWriteOutOfSpace: reason = String(cString: strerror(ENOSPC))
            case .fileWriteVolumeReadOnly: reason = String(cString: strerror(EROFS))
            case .fileReadTooLarge: reason = "too large to read"
            default: reason = "file system error \(e.code.rawValue)"
            }
        }
        return e.filePath.map { "\($0): \(reason)" } ?? reason
    }
    if let e = error as? POSIXError { return String(cString: strerror(e.code.rawValue)) }
    return String(describing: error)
}

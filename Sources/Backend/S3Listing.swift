// Reading S3's XML answers (ListObjectsV2, InitiateMultipartUpload,
// CompleteMultipartUpload, errors). The body comes from the server, so
// nothing in it is trusted: the caller caps its size, keys are asked for
// URL-encoded (`encoding-type=url`) and decoded here, and an entry without
// a parsable size or time is dropped rather than guessed.

import FoundationEssentials
import Glibc
import Platform

enum S3XML {
    /// The largest answer read: a ListObjectsV2 page of 1,000 keys is about 300 KB.
    static let maxBody = 4 << 20

    struct Listed {
        var key: String
        var size: Int
        var modified: Date?
        var nanoseconds: Int64
    }

    struct Page {
        var objects: [Listed] = []
        /// `CommonPrefixes` (with a delimiter): the "directories".
        var prefixes: [String] = []
        var nextToken: String?
    }

    /// The text of every `<name>…</name>` in `text`, in order, entities decoded.
    static func elements(_ name: String, in text: Substring) -> [String] {
        var out: [String] = []
        var rest = text
        let open = "<\(name)>", close = "</\(name)>"
        while let a = rest.firstRange(of: open), let b = rest[a.upperBound...].firstRange(of: close) {
            out.append(unescaped(rest[a.upperBound..<b.lowerBound]))
            rest = rest[b.upperBound...]
        }
        return out
    }

    static func first(_ name: String, in text: Substring) -> String? { elements(name, in: text).first }

    /// XML's five entities and numeric references; anything else stays as it is.
    static func unescaped(_ s: Substring) -> String {
        guard s.contains("&") else { return String(s) }
        var out = ""
        var rest = s
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";"), rest.distance(from: amp, to: semi) <= 8 else {
                out += "&"
                rest = rest[rest.index(after: amp)...]
                continue
            }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                let number = entity.hasPrefix("#x") ? UInt32(entity.dropFirst(2), radix: 16) : entity.hasPrefix("#") ? UInt32(entity.dropFirst()) : nil
                if let number, let scalar = Unicode.Scalar(number) { out.unicodeScalars.append(scalar) } else { out += "&" + entity + ";" }
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }

    /// One ListObjectsV2 page (asked with `encoding-type=url`).
    static func listPage(_ body: [UInt8]) -> Page {
        let text = Substring(String(decoding: body, as: UTF8.self))
        var page = Page()
        for block in elements("Contents", in: text) {
            let b = Substring(block)
            guard let raw = first("Key", in: b), let key = PercentEncoding.decode(raw),
                  let sizeText = first("Size", in: b), let size = Int(sizeText), size >= 0 else { continue }
            let (date, ns) = first("LastModified", in: b).flatMap(isoDate) ?? (nil, 0)
            page.objects.append(Listed(key: key, size: size, modified: date, nanoseconds: ns))
        }
        for block in elements("CommonPrefixes", in: text) {
            if let raw = first("Prefix", in: Substring(block)), let p = PercentEncoding.decode(raw) { page.prefixes.append(p) }
        }
        if first("IsTruncated", in: text) == "true" { page.nextToken = first("NextContinuationToken", in: text) }
        return page
    }

    /// An S3 error answer's code and message, if the body is one.
    static func error(_ body: [UInt8]) -> (code: String, message: String)? {
        let text = Substring(String(decoding: body, as: UTF8.self))
        guard text.contains("<Error>"), let code = first("Code", in: text) else { return nil }
        return (code, first("Message", in: text) ?? "")
    }

    /// `2026-12-06T20:27:45.123Z` (S3's LastModified, ISO 8601 in UTC) as a
    /// date and the nanoseconds within its second.
    static func isoDate(_ text: String) -> (Date, Int64)? {
        let u = Array(text.utf8)
        func number(_ r: Range<Int>) -> Int? {
            guard r.upperBound <= u.count, u[r].allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return u[r].reduce(0) { $0 * 10 + Int($1 - 48) }
        }
        guard u.count >= 20, u.last == UInt8(ascii: "Z"), u[4] == 45, u[7] == 45, u[10] == 84, u[13] == 58, u[16] == 58,
              let year = number(0..<4), (1970...9999).contains(year), let month = number(5..<7), (1...12).contains(month),
              let day = number(8..<10), (1...31).contains(day), let hour = number(11..<13), hour < 24,
              let minute = number(14..<16), minute < 60, let second = number(17..<19), second <= 60 else { return nil }
        var ns: Int64 = 0
        if u.count > 20 {
            guard u[19] == 46, u.count <= 30, let fraction = number(20..<(u.count - 1)) else { return nil }
            ns = Int64(fraction) * Int64(pow(10, Double(9 - (u.count - 21))))
        }
        var t = tm()
        t.tm_year = Int32(year - 1900); t.tm_mon = Int32(month - 1); t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour); t.tm_min = Int32(minute); t.tm_sec = Int32(second)
        return (Date(timeIntervalSince1970: TimeInterval(timegm(&t)) + Double(ns) / 1e9), ns)
    }

    /// A time as S3's retain-until header takes it: `2026-12-06T20:27:45Z`.
    static func isoText(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.up))
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(cFormat: "%04ld-%02ld-%02ldT%02ld:%02ld:%02ldZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }
}

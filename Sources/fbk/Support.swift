import Foundation

/// Hexadecimal text to bytes and back.
enum HexBytes {
    /// The bytes spelled by `text`, or nil if it is not an even run of hex digits.
    static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let hi = value(digits[i]), let lo = value(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Lists regular files under paths, without following symbolic links.
enum FileWalker {
    struct NotFound: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path): no such file or directory" }
    }

    static func regularFiles(under paths: [String]) throws -> [String] {
        var result: [String] = []
        for path in paths {
            var st = stat()
            guard lstat(path, &st) == 0 else { throw NotFound(path: path) }
            if st.st_mode & S_IFMT == S_IFREG {
                result.append(path)
            } else if st.st_mode & S_IFMT == S_IFDIR {
                var children: [String] = []
                if let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
                    children = names.sorted().map { path.hasSuffix("/") ? path + $0 : path + "/" + $0 }
                }
                for child in children {
                    var cst = stat()
                    guard lstat(child, &cst) == 0 else { continue }
                    if cst.st_mode & S_IFMT == S_IFREG || cst.st_mode & S_IFMT == S_IFDIR {
                        result += try regularFiles(under: [child])
                    }
                }
            }
        }
        return result
    }
}

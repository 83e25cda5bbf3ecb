// Text for a terminal from names a backup holds: a file name may carry
// escape sequences that would rewrite the screen or the title of whoever
// lists it. Human output escapes control characters as `ls -b` does;
// JSON output stays exact.

extension String {
    /// Control characters (C0, DEL, C1) and backslashes escaped: `\033`,
    /// `\n`, `\t`, `\\` and octal for the rest, so what is printed is what
    /// the name holds, byte for byte readable.
    public var terminalSafe: String {
        guard unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x5C || ($0.value >= 0x7F && $0.value < 0xA0) }) else { return self }
        var out = ""
        for u in unicodeScalars {
            switch u.value {
            case 0x0A: out += "\\n"
            case 0x09: out += "\\t"
            case 0x5C: out += "\\\\"
            case 0..<0x20, 0x7F..<0xA0:
                for byte in String(u).utf8 { out += "\\" + String(byte, radix: 8).leftPadded(3) }
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }

    private func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

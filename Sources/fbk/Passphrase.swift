import FoundationEssentials
import Glibc
import Platform

/// Where a passphrase comes from: `--passphrase-file`, then `FBK_PASSPHRASE`,
/// then a prompt on the terminal (no echo). Never from the command line.
enum Passphrase {
    struct Unavailable: Error, CustomStringConvertible {
        let description: String
    }

    static let environmentVariable = "FBK_PASSPHRASE"

    static func obtain(file: String?, prompt: String, confirm: Bool = false) throws -> [UInt8] {
        if let file {
            var bytes: [UInt8]
            do { bytes = try readOperatorFile(file, limit: 65_536, what: "passphrase file") } catch {
                throw Unavailable(description: error.message)
            }
            if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            return bytes
        }
        if let value = ProcessInfo.processInfo.environment[environmentVariable] {
            return Array(value.utf8)
        }
        let first = try promptOnTerminal(prompt)
        if confirm {
            let second = try promptOnTerminal("Repeat passphrase: ")
            guard first == second else { throw Unavailable(description: "the passphrases do not match") }
        }
        return first
    }

    /// Reads one line from /dev/tty with echo off.
    private static func promptOnTerminal(_ prompt: String) throws -> [UInt8] {
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Unavailable(description:
                "no passphrase: no terminal to ask on; use --passphrase-file FILE or set \(environmentVariable)")
        }
        defer { close(fd) }
        _ = prompt.withCString { write(fd, $0, strlen($0)) }
        var saved = termios()
        let haveTermios = tcgetattr(fd, &saved) == 0
        if haveTermios {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(fd, TCSAFLUSH, &quiet)
        }
        defer {
            if haveTermios { tcsetattr(fd, TCSAFLUSH, &saved) }
            _ = write(fd, "\n", 1)
        }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1, byte != UInt8(ascii: "\n") { line.append(byte) }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        return line
    }
}

// Private scratch directories (decrypted packs, restore plans, fetched
// objects): made fresh by mkdtemp with mode 0700, so no other user can
// plant a file or a link in them, and removed when the run ends, also when
// SIGINT, SIGTERM, SIGHUP, SIGQUIT or SIGPIPE (`fbk ls -R | head`) stops
// it, and at exit for any whose owner was still alive then (a worker
// thread's last reference outliving the main thread's return): nothing
// decrypted is left in TMPDIR.

import FoundationEssentials
import Glibc

/// A directory only this process uses, under `TMPDIR`.
public struct PrivateDirectory: Sendable {
    public let path: String

    /// Creates `TMPDIR/PREFIX-XXXXXX` (mode 0700) and registers it for
    /// removal on a stopping signal.
    /// - Throws: `StoreError.io` when it cannot be created.
    public init(prefix: String) throws(StoreError) {
        let base = Self.temporaryDirectory
        var template = Array(((base.hasSuffix("/") ? base : base + "/") + prefix + "-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else {
            throw StoreError(.io, "cannot create a private directory in \(base): \(String(cString: strerror(errno))); set TMPDIR to a writable directory")
        }
        path = String(cString: p)
        SignalCleanup.shared.register(path)
    }

    /// Removes the directory and everything in it.
    public func remove() { Self.remove(path) }

    public static func remove(_ path: String) {
        SignalCleanup.shared.unregister(path)
        removeTree(path)
    }

    /// `TMPDIR`, or /tmp when it is unset or empty.
    package static var temporaryDirectory: String {
        let tmp = ProcessInfo.processInfo.environment["TMPDIR"] ?? ""
        return tmp.isEmpty ? "/tmp" : tmp
    }

    /// Removes a tree without following links (FileManager's removeItem
    /// does not follow them either, but cannot remove very deep trees).
    static func removeTree(_ path: String) {
        if (try? FileManager.default.removeItem(atPath: path)) == nil, FileManager.default.fileExists(atPath: path) {
            var pid = pid_t()
            let arguments = ["/bin/rm", "-rf", "--", path]
            let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
            defer { for a in argv { free(a) } }
            if posix_spawn(&pid, "/bin/rm", nil, nil, argv, environ) == 0 {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            }
        }
    }
}

/// Removes registered directories when the process is told to stop, or
/// exits with some still registered. The signal handler only writes a byte
/// to a pipe (all a handler may safely do); a thread of its own reads it,
/// removes the directories and exits with 128 + the signal's number. An
/// atexit handler removes what is left at a normal exit.
final class SignalCleanup: @unchecked Sendable {
    static let shared = SignalCleanup()
    private let lock = Lock()
    private var paths = Set<String>()
    private var installed = false

    func register(_ path: String) {
        lock.withLock {
            paths.insert(path)
            if !installed { installed = true; install() }
        }
    }

    func unregister(_ path: String) { _ = lock.withLock { paths.remove(path) } }

    /// Removes every directory still registered.
    func removeAll() {
        let all = lock.withLock { () -> Set<String> in
            defer { paths.removeAll() }
            return paths
        }
        for p in all { PrivateDirectory.removeTree(p) }
    }

    private func install() {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return }
        signalPipe = fds[1]
        let reader = fds[0]
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE] {
            signal(sig) { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipe, &byte, 1)
            }
        }
        atexit { SignalCleanup.shared.removeAll() }
        Threads.start(name: "fbk-signal-cleanup") { [self] in
            var byte: UInt8 = 0
            while read(reader, &byte, 1) < 0 && errno == EINTR {}
            removeAll()
            writeStandardError("fbk: stopped by signal \(byte); temporary files removed\n")
            _exit(128 + Int32(byte))
        }
    }
}

/// The write end of the pipe the signal handler writes to.
nonisolated(unsafe) private var signalPipe: Int32 = -1

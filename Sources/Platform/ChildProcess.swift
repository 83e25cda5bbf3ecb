// A program fbk starts on the operator's behalf: a hook, or a command whose
// output is backed up (a database dump). Each runs in a process group of
// its own, with default signal handling and none blocked (whatever thread
// starts it), standard input from /dev/null, standard error shared with
// fbk's, and standard output either read through a pipe or sent to fbk's
// standard error (fbk's own standard output may carry a JSON summary).
// Nothing else fbk has open reaches it: not the index, the lock file, nor
// a connection to a mirror (libcurl's sockets are not close-on-exec), and
// not what fbk itself inherited.
// `stop` ends the whole group: SIGTERM, then SIGKILL 10 seconds later.

internal import CLinux
import FoundationEssentials
import Glibc

public final class ChildProcess {
    public enum Termination: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut

        /// How it ended, for messages; nil for a clean exit.
        public var failure: String? {
            switch self {
            case .exited(0): nil
            case .exited(let code): "exited \(code)"
            case .signaled(let signal): "was killed by signal \(signal)"
            case .timedOut: "ran past its time limit and was stopped"
            }
        }
    }

    public let pid: Glibc.pid_t
    /// The read end of the child's standard output, when it is captured.
    public let output: Int32?
    private var stopAt: Date?
    private var ended: Termination?

    /// Starts `/bin/sh -c command` (as `user`, through runuser, when given).
    public init(shell command: String, user: String? = nil, environment: [String: String], captureOutput: Bool) throws(StoreError) {
        let words = user.map { ["/usr/sbin/runuser", "-u", $0, "--", "/bin/sh", "-c", command] } ?? ["/bin/sh", "-c", command]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for p in envp + argv { free(p) } }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var fds: [Int32] = [-1, -1]
        if captureOutput {
            guard pipe(&fds) == 0 else { throw StoreError(.io, "cannot make a pipe: \(String(cString: strerror(errno)))") }
            // Neither end may leak into other children (the child gets the write end as its fd 1).
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 2, 1)
        }
        CLinux_spawn_close_from(&actions, 3)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, words[0], &actions, &attributes, argv, envp)
        if captureOutput { close(fds[1]) }
        guard rc == 0 else {
            if captureOutput { close(fds[0]) }
            throw StoreError(.config, "cannot start '\(command)'\(user.map { " as \($0)" } ?? ""): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        output = captureOutput ? fds[0] : nil
    }

    deinit {
        if let output { close(output) }
        if ended == nil {
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
    }

    /// Stops the process group: SIGTERM now, SIGKILL if it is still there in 10 s (`wait` sends it).
    public func stop() {
        guard stopAt == nil else { return }
        kill(-pid, SIGTERM)
        stopAt = Date()
    }

    /// Waits until the process ends, stopping it at `deadline`.
    public func wait(until deadline: Date) -> Termination {
        if let ended { return ended }
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { break }
            if stopAt == nil && Date() > deadline { stop() }
            if let at = stopAt, Date().timeIntervalSince(at) > 10 { kill(-pid, SIGKILL) }
            usleep(20_000)
        }
        let result: Termination = stopAt != nil ? .timedOut : status & 0x7f != 0 ? .signaled(status & 0x7f) : .exited((status >> 8) & 0xff)
        ended = result
        // What it started in its group and left behind goes with it.
        kill(-pid, SIGKILL)
        return result
    }

    /// Reads up to `count` bytes of its output into `buffer`: 0 at its end.
    /// Gives up at `deadline` (stopping the process) with -1 and ETIMEDOUT.
    public func read(into buffer: UnsafeMutableRawBufferPointer, until deadline: Date) -> Int {
        guard let output else { return 0 }
        while true {
            var p = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(0, min(1000, deadline.timeIntervalSinceNow * 1000)))
            let ready = poll(&p, 1, ms)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 {
                if Date() > deadline {
                    stop()
                    errno = ETIMEDOUT
                    return -1
                }
                continue
            }
            let n = Glibc.read(output, buffer.baseAddress, buffer.count)
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }
}

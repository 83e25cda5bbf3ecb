import CLinux
import Foundation

/// Runs a program to completion with posix_spawn and waitpid, standard
/// streams redirected to files. (Foundation's Process can miss the exit of
/// a child that daemonizes, such as nginx, when launches overlap.)
public func spawnAndWait(_ program: String, _ arguments: [String], environment: [String: String],
                         stdin: String?, stdout: String, stderr: String) throws -> Int32 {
    waitForExit(try spawn(program, arguments, environment: environment, stdin: stdin, stdout: stdout, stderr: stderr))
}

/// Starts a program (found on PATH unless it names a path) with its
/// standard streams redirected to files, and no other descriptor: tests
/// run in parallel, and Foundation opens files without close-on-exec, so a
/// child would otherwise keep what another test has open (a file on a FUSE
/// mount, which then cannot be unmounted; the pipe swift-test reads the
/// run's output from, which then never ends while a daemon lives).
func spawn(_ program: String, _ arguments: [String], environment: [String: String],
           stdin: String?, stdout: String, stderr: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    CLinux_spawn_close_from(&actions, 3)
    let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in argv { free(p) }
        for p in envp { free(p) }
    }
    var pid: pid_t = 0
    let rc = program.contains("/")
        ? posix_spawn(&pid, program, &actions, nil, argv, envp)
        : posix_spawnp(&pid, program, &actions, nil, argv, envp)
    guard rc == 0 else { throw FixtureError("cannot run \(program): \(String(cString: strerror(rc)))") }
    return pid
}

/// Starts a program without waiting for it; standard streams go to files.
public func spawnDetached(_ program: String, _ arguments: [String], environment: [String: String],
                          stdout: String, stderr: String) throws -> pid_t {
    try spawn(program, arguments, environment: environment, stdin: nil, stdout: stdout, stderr: stderr)
}

/// Waits for a child; returns its exit status (128 + signal when killed).
public func waitForExit(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return exitStatus(status)
}

/// Waits for a child at most `seconds`; nil when it is still running then
/// (the caller decides whether to stop it; the test then fails, not hangs).
/// It sleeps between looks without holding one of Swift Testing's pool
/// threads (as many as the machine has cores; on two, a test blocked for
/// minutes starves the tests beside it past their time limits).
public func awaitExit(_ pid: pid_t, seconds: Double) async -> Int32? {
    let deadline = Date().addingTimeInterval(seconds)
    var status: Int32 = 0
    while true {
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { return exitStatus(status) }
        if r < 0 && errno != EINTR { return nil }
        if Date() > deadline { return nil }
        try? await Task.sleep(for: .milliseconds(20))
    }
}

private func exitStatus(_ status: Int32) -> Int32 {
    status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

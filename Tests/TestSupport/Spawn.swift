import Foundation

/// Runs a program to completion with posix_spawn and waitpid, standard
/// streams redirected to files. (Foundation's Process can miss the exit of
/// a child that daemonizes, such as nginx, when launches overlap.)
public func spawnAndWait(_ program: String, _ arguments: [String], environment: [String: String],
                         stdin: String?, stdout: String, stderr: String) throws -> Int32 {
    waitForExit(try spawn(program, arguments, environment: environment, stdin: stdin, stdout: stdout, stderr: stderr))
}

/// Starts a program (found on PATH unless it names a path) with its
/// standard streams redirected to files.
func spawn(_ program: String, _ arguments: [String], environment: [String: String],
           stdin: String?, stdout: String, stderr: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
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
    if status & 0x7f == 0 { return (status >> 8) & 0xff }
    return 128 + (status & 0x7f)
}

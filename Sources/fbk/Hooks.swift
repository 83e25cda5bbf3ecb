// Running the configured hooks around a snapshot (README, "Hooks"): each a
// `/bin/sh -c` command line in a process group of its own, its output on
// fbk's standard error (standard output may carry the JSON summary), with a
// time limit after which the group gets SIGTERM and, 10 seconds later,
// SIGKILL. The environment tells a hook where the run stands.

import Foundation
import Config
import Platform

struct HookRunner {
    let hooks: Hooks
    let client: String
    let configPath: String

    /// What a hook failed with, for messages: nil when it exited 0.
    typealias Outcome = String?

    /// Runs each command of `phase` in order; stops at the first that fails.
    /// Returns the first failure, if any.
    func run(_ phase: String, _ commands: [String], environment extra: [String: String] = [:]) -> Outcome {
        for command in commands {
            if let failure = runOne(command, phase: phase, environment: extra) {
                FileHandle.standardError.write(Data("fbk: \(phase) hook failed: \(failure)\n".terminalSafe.utf8))
                return failure
            }
        }
        return nil
    }

    private func runOne(_ command: String, phase: String, environment extra: [String: String]) -> Outcome {
        var env = ProcessInfo.processInfo.environment
        env["FBK_CLIENT"] = client
        env["FBK_CONFIG"] = configPath
        env["FBK_HOOK"] = phase
        for (k, v) in extra { env[k] = v }
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let words: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for p in envp + argv { free(p) } }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (to stop all it started), with default signals and none blocked.
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
        posix_spawn_file_actions_adddup2(&actions, 2, 1)

        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp)
        guard rc == 0 else { return "'\(command)' could not be started: \(String(cString: strerror(rc)))" }

        let deadline = Date().addingTimeInterval(TimeInterval(hooks.timeout))
        var status: Int32 = 0
        var killedAt: Date?
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return "'\(command)': waitpid: \(String(cString: strerror(errno)))" }
            if killedAt == nil && Date() > deadline {
                kill(-pid, SIGTERM)
                killedAt = Date()
            } else if let at = killedAt, Date().timeIntervalSince(at) > 10 {
                kill(-pid, SIGKILL)
            }
            usleep(20_000)
        }
        if killedAt != nil { return "'\(command)' ran longer than hook_timeout (\(hooks.timeout) s) and was stopped" }
        if status & 0x7f != 0 { return "'\(command)' was killed by signal \(status & 0x7f)" }
        let code = (status >> 8) & 0xff
        return code == 0 ? nil : "'\(command)' exited \(code)"
    }
}

// Running the configured hooks around a snapshot (README, "Hooks"): each a
// `/bin/sh -c` command line (ChildProcess: its own process group, its
// output on fbk's standard error), with a time limit. The environment tells
// a hook where the run stands.

import FoundationEssentials
import Glibc
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
                writeStandardError("fbk: \(phase) hook failed: \(failure)\n".terminalSafe)
                return failure
            }
        }
        return nil
    }

    private func runOne(_ command: String, phase: String, environment extra: [String: String]) -> Outcome {
        var env = extra
        env["FBK_CLIENT"] = client
        env["FBK_CONFIG"] = configPath
        env["FBK_HOOK"] = phase
        do {
            let child = try ChildProcess(shell: command, environment: env, captureOutput: false)
            let end = child.wait(until: Date().addingTimeInterval(TimeInterval(hooks.timeout)))
            if end == .timedOut { return "'\(command)' ran longer than hook_timeout (\(hooks.timeout) s) and was stopped" }
            return end.failure.map { "'\(command)' \($0)" }
        } catch {
            return error.message
        }
    }
}

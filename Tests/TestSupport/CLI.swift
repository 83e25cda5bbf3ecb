import Foundation

/// Runs the built `fbk` binary, as a user would.
public enum CLI {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var stdoutBytes: Data
    }

    /// The `fbk` executable next to the test bundle in the build folder.
    public static var binary: URL {
        var dir = Bundle.main.bundleURL
        if dir.pathExtension == "xctest" { dir.deleteLastPathComponent() }
        for candidate in [dir.appendingPathComponent("fbk"),
                          dir.deletingLastPathComponent().appendingPathComponent("fbk")] {
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fbk")
    }

    public static func run(_ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil) throws -> Result {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        // Output goes to files, so neither stream can fill up and stall the child.
        let scratch = try TemporaryDirectory()
        var input: String? = nil
        if let stdin { input = try scratch.write("in", [UInt8](stdin)) }
        let status = try spawnAndWait(binary.path, arguments, environment: env, stdin: input,
                                      stdout: scratch.file("out"), stderr: scratch.file("err"))
        let outData = FileManager.default.contents(atPath: scratch.file("out")) ?? Data()
        let errData = FileManager.default.contents(atPath: scratch.file("err")) ?? Data()
        return Result(status: status,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self),
                      stdoutBytes: outData)
    }
}


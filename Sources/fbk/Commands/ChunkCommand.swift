import ArgumentParser
import Chunker
import FoundationEssentials
import Glibc
import Seal
import Platform
import Format

/// `fbk chunk`: cut files into chunks and report counts, sizes and speed.
struct ChunkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chunk",
        abstract: "Cut files into content-defined chunks and report sizes and speed.",
        discussion: """
            Reads each file (directories are walked, symbolic links are not \
            followed) and prints per-file and total chunk counts, the mean chunk \
            size and the chunking throughput. Nothing is stored.

            With --secret the files are cut exactly as that client cuts them \
            (its chunker seed is derived from the secret), and --list prints \
            where each chunk starts and how long it is.

            Examples:
              fbk chunk --json /usr/share/doc
              fbk chunk --secret /var/lib/fbk/secret --list /var/log/syslog
            """
    )

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @Option(name: .long, help: "Chunker seed, 64 hex digits (default: all zero, for measurements only).")
    var seed: String = String(repeating: "0", count: 64)

    @Option(name: .long, help: "A client secret file: cut as that client does (instead of --seed).")
    var secret: String?

    @Flag(name: .long, help: "List each chunk's offset and length.")
    var list = false

    @Option(name: .customLong("min"), help: "Minimum chunk size in bytes.")
    var minimumSize = ChunkerParameters.default.minimumSize

    @Option(name: .customLong("avg"), help: "Average chunk size in bytes.")
    var averageSize = ChunkerParameters.default.averageSize

    @Option(name: .customLong("max"), help: "Maximum chunk size in bytes.")
    var maximumSize = ChunkerParameters.default.maximumSize

    @Option(name: .long, help: "Rolling-hash window in bytes.")
    var window = ChunkerParameters.default.windowSize

    @Argument(help: "Files or directories to chunk.")
    var paths: [String]

    var parameters: ChunkerParameters {
        ChunkerParameters(minimumSize: minimumSize, averageSize: averageSize,
                          maximumSize: maximumSize, windowSize: window)
    }

    func validate() throws {
        do { try parameters.validate() } catch { throw ValidationError(error.description) }
        guard Hex.decode(seed)?.count == 32 else {
            throw ValidationError("--seed must be 64 hexadecimal digits (32 bytes)")
        }
    }

    func run() throws {
        let chunkerSeed = try secret.map { try ClientKeys.load(path: $0).chunkerSeed } ?? Hex.decode(seed)!
        let chunker = try Chunker(parameters: parameters, seed: chunkerSeed)
        var report = ChunkReport(parameters: parameters)
        let clock = ContinuousClock()
        let started = clock.now
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for file in try FileWalker.regularFiles(under: paths) {
            var entry = ChunkReport.File(path: file, bytes: 0, chunks: 0, list: list ? [] : nil)
            let fd = open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                report.warnings.append("\(file): cannot open: \(String(cString: strerror(errno)))")
                continue
            }
            defer { close(fd) }
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    report.warnings.append("\(file): read failed: \(String(cString: strerror(errno)))")
                    break
                }
                if n == 0 { break }
                entry.bytes += n
                buffer.withUnsafeBytes { raw in
                    chunker.feed(UnsafeRawBufferPointer(rebasing: raw[0..<n])) { entry.add($0.count, listing: list) }
                }
            }
            chunker.finish { entry.add($0.count, listing: list) }
            report.add(entry)
        }
        report.seconds = (clock.now - started).seconds
        print(json ? report.json() : report.text())
        if !report.warnings.isEmpty { throw ExitCode(1) }
    }
}

/// What `fbk chunk` found.
struct ChunkReport: Codable {
    struct File: Codable {
        var path: String
        var bytes: Int
        var chunks: Int
        /// With --list: each chunk's [offset, length].
        var list: [[Int]]?

        /// Counts a chunk that ends the file's bytes read so far.
        mutating func add(_ length: Int, listing: Bool) {
            if listing { list!.append([chunkedBytes, length]) }
            chunkedBytes += length
            chunks += 1
        }

        fileprivate var chunkedBytes = 0
        enum CodingKeys: String, CodingKey { case path, bytes, chunks, list }
    }

    var parameters: String
    var files: [File] = []
    var totalBytes = 0
    var totalChunks = 0
    var seconds = 0.0
    var warnings: [String] = []

    init(parameters: ChunkerParameters) { self.parameters = parameters.description }

    var meanChunkSize: Double { totalChunks == 0 ? 0 : Double(totalBytes) / Double(totalChunks) }
    var mebibytesPerSecond: Double { seconds > 0 ? Double(totalBytes) / 1_048_576 / seconds : 0 }

    mutating func add(_ file: File) {
        files.append(file)
        totalBytes += file.bytes
        totalChunks += file.chunks
    }

    func text() -> String {
        var lines: [String] = []
        for f in files {
            lines.append("\(f.path): \(f.bytes) bytes, \(f.chunks) chunks, mean \(f.chunks == 0 ? 0 : f.bytes / f.chunks) bytes")
            lines += (f.list ?? []).map { "  \($0[0]) \($0[1])" }
        }
        lines.append(String(
            cFormat: "total: %ld files, %ld bytes, %ld chunks, mean %.0f bytes, %.3f s, %.1f MiB/s (",
            files.count, totalBytes, totalChunks, meanChunkSize, seconds, mebibytesPerSecond) + parameters + ")")
        lines += warnings.map { "warning: \($0)" }
        return lines.joined(separator: "\n")
    }

    func json() -> String {
        struct Output: Codable {
            var parameters: String
            var files: [File]
            var total_files: Int, total_bytes: Int, total_chunks: Int
            var mean_chunk_size: Double, seconds: Double, mib_per_second: Double
            var warnings: [String]
            var version: String
        }
        let out = Output(parameters: parameters, files: files, total_files: files.count,
                         total_bytes: totalBytes, total_chunks: totalChunks,
                         mean_chunk_size: meanChunkSize, seconds: seconds,
                         mib_per_second: mebibytesPerSecond, warnings: warnings, version: fbkVersion)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try! encoder.encode(out), as: UTF8.self)
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}

internal import CLinux
import FoundationEssentials
import Glibc
import Dispatch
import Platform

/// Lists regular files under paths, without following symbolic links.
enum FileWalker {
    struct NotFound: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path): no such file or directory" }
    }

    static func regularFiles(under paths: [String]) throws -> [String] {
        var result: [String] = []
        for path in paths {
            var st = stat()
            guard lstat(path, &st) == 0 else { throw NotFound(path: path) }
            if st.st_mode & S_IFMT == S_IFREG {
                result.append(path)
            } else if st.st_mode & S_IFMT == S_IFDIR {
                var children: [String] = []
                if let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
                    children = names.sorted().map { path.hasSuffix("/") ? path + $0 : path + "/" + $0 }
                }
                for child in children {
                    var cst = stat()
                    guard lstat(child, &cst) == 0 else { continue }
                    if cst.st_mode & S_IFMT == S_IFREG || cst.st_mode & S_IFMT == S_IFDIR {
                        result += try regularFiles(under: [child])
                    }
                }
            }
        }
        return result
    }
}

/// Creates a file that must not exist yet, writes `text` and syncs it.
/// - Throws: `CLIError` (exit 73) if it exists or cannot be written.
func createNewFile(_ path: String, _ text: String, mode: mode_t) throws {
    do {
        try DurableFile.create(path, with: Array(text.utf8), mode: mode)
    } catch {
        throw CLIError(message: error.error.message, status: ExitStatus.cannotCreate)
    }
}

/// Runs `body` on a thread with a large stack and waits for it. Walking a
/// directory tree recurses once per level; the main thread's 8 MiB stack
/// would overflow on trees a few thousand levels deep.
func onLargeStack<T>(_ body: @escaping () throws -> T) throws -> T {
    let box = ResultBox<T>(body)
    let done = DispatchSemaphore(value: 0)
    // 1 GiB of address space; only the pages used are committed.
    Threads.start(name: "fbk-main", stackSize: 1 << 30) {
        box.run()
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// Copies a file's bytes to a descriptor (standard output, an output
/// file); the number of bytes copied.
/// - Throws: `StoreError.io` when either side fails.
func copyFile(_ path: String, to output: Int32) throws(StoreError) -> Int {
    let input = open(path, O_RDONLY | O_CLOEXEC)
    guard input >= 0 else { throw StoreError(.io, "cannot read back \(path): \(String(cString: strerror(errno)))") }
    defer { close(input) }
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    var total = 0
    while true {
        let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { throw StoreError(.io, "cannot read back \(path): \(String(cString: strerror(errno)))") }
        if n == 0 { return total }
        if let failure = buffer.withUnsafeBytes({ FileSystem.writeAll(output, UnsafeRawBufferPointer(rebasing: $0[..<n])) }) {
            throw StoreError(.io, "cannot write the decrypted bytes: \(FileSystem.writeFailureText(failure))")
        }
        total += n
    }
}

/// Carries the work to the large-stack thread and its result back; the
/// caller waits on a semaphore, so the two never touch it at once.
/// The body is let go once run, so what it captured (a repository and its
/// private directories) is released before the caller goes on, not when
/// the thread happens to end.
final class ResultBox<T>: @unchecked Sendable {
    private var body: (() throws -> T)?
    var result: Result<T, Error>?

    init(_ body: @escaping () throws -> T) { self.body = body }
    func run() {
        result = Result { try body!() }
        body = nil
    }
}

/// Keeps freed buffers from staying in the process. Chunks and pack pieces
/// are buffers of about a megabyte allocated on several threads; glibc
/// would raise its mmap threshold after the first is freed and then keep
/// them in per-thread arenas, which measured about 20 MiB more peak RSS on
/// a first snapshot. Fixed, the threshold sends them back to the kernel.
func limitMallocRetention() {
    _ = mallopt(M_MMAP_THRESHOLD, 256 << 10)
    _ = mallopt(M_ARENA_MAX, 2)
}

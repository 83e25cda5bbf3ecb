// A mirror that is a local directory (local disk, NFS, the embedded default).

import Foundation
import Format
import Platform

/// Writes objects into a directory, create-only: each object is written to
/// a temporary name, synced, then hard-linked to its final name, which fails
/// rather than replace an existing file.
public struct DirectoryMirror: Mirror {
    public let url: String
    let root: String

    public init(url: String) throws(StoreError) {
        guard url.hasPrefix("file://") else { throw StoreError(.config, "\(url) is not a file:// URL") }
        var path = String(url.dropFirst("file://".count))
        path = path.removingPercentEncoding ?? path
        guard path.hasPrefix("/") else { throw StoreError(.config, "mirror \(url) must name an absolute path (file:///…)") }
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        self.url = url
        root = path
    }

    public func put(_ relativePath: String, from localPath: String, size: Int) throws(MirrorFailure) -> PutOutcome {
        let target = root + "/" + relativePath
        let directory = (target as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
        } catch {
            throw fail("cannot create \(directory): \(error.localizedDescription)", permanent: true)
        }
        if FileManager.default.fileExists(atPath: target) { return .alreadyPresent }
        let temporary = directory + "/.fbk-incoming-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(temporary) }
        try copy(localPath, to: temporary)
        if link(temporary, target) != 0 {
            if errno == EEXIST { return .alreadyPresent }
            throw fail("cannot create \(target): \(String(cString: strerror(errno)))", permanent: errno == ENOSPC || errno == EACCES)
        }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
        return .stored
    }

    private func fail(_ message: String, permanent: Bool) -> MirrorFailure {
        MirrorFailure(mirror: url, message: message, permanent: permanent)
    }

    private func copy(_ source: String, to destination: String) throws(MirrorFailure) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw fail("cannot read \(source): \(String(cString: strerror(errno)))", permanent: true) }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard output >= 0 else {
            throw fail("cannot create \(destination): \(String(cString: strerror(errno)))", permanent: errno == EACCES || errno == ENOSPC)
        }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = read(input, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw fail("cannot read \(source): \(String(cString: strerror(errno)))", permanent: true) }
            if n == 0 { break }
            var written = 0
            while written < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, n - written) }
                guard w > 0 else {
                    throw fail("cannot write \(destination): \(String(cString: strerror(errno)))", permanent: errno == ENOSPC)
                }
                written += w
            }
        }
        guard fsync(output) == 0 else { throw fail("cannot sync \(destination): \(String(cString: strerror(errno)))", permanent: false) }
    }
}

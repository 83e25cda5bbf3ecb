// Decrypted packs in a repository's work directory: each decrypted once,
// kept while the restore needs it, removed when released. A prefetching
// thread decrypts the packs a restore will need ahead of the thread that
// writes their chunks, so fetching and decryption overlap decompression,
// verification and writing; at most `ahead` decrypted packs wait.

import Backend
import FoundationEssentials
import Glibc
import Format
import Platform
import Seal

/// A pack decrypted into the work directory, with its table.
struct OpenedPack: Sendable {
    let path: String
    let entries: [ChunkID: PackEntry]
    /// The source (index) whose copy this is.
    let source: Int
}

/// Fetches a pack from the sources and decrypts it into the work
/// directory: immutable, so any thread may use it.
struct PackOpener: Sendable {
    let sources: [any Backend]
    let opener: Opener
    let workDirectory: String

    /// Decrypts a pack from the first of `indices` (all sources by default)
    /// whose copy opens and has a sound table, into a file named for `use`.
    func open(_ pack: String, sources indices: [Int]? = nil, as use: String = "pack") -> Result<OpenedPack, StoreError> {
        let indices = indices ?? Array(sources.indices)
        guard ObjectName.isPack(pack) else {
            return .failure(StoreError(.integrity, "\(pack) is not a pack's name"))
        }
        let target = workDirectory + "/\(use)-" + PathName.name(pack)
        var firstError: (any Error)?
        var unreadable: [String] = []
        // Another source may hold an intact copy: each is fetched only when the ones before it failed.
        for i in indices {
            guard let holder = Repository.fetch(pack, from: sources[i], limit: PackFormat.maxSealedLength, problems: &unreadable) else { continue }
            do {
                _ = try opener.open(fileAt: holder.path, to: target, durable: false)
                let plain = try Self.readTable(target, name: pack)
                return .success(OpenedPack(path: target, entries: Dictionary(plain.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }),
                                           source: i))
            } catch {
                unlink(target)
                if firstError == nil { firstError = error }
            }
        }
        guard let firstError else {
            let why = unreadable.isEmpty ? "\(pack) is missing from \(indices.map { sources[$0].location }.joined(separator: " and "))"
                                         : unreadable.joined(separator: "; ")
            return .failure(StoreError(unreadable.isEmpty ? .integrity : .io, why))
        }
        return .failure(StoreError(.integrity, "\(pack) cannot be opened: \(firstError)" + (unreadable.isEmpty ? "" : "; " + unreadable.joined(separator: "; "))))
    }

    /// Reads only a decrypted pack's head, table and trailer (pread), never
    /// the whole pack; Format parses and checks them.
    static func readTable(_ path: String, name: String) throws(StoreError) -> [PackEntry] {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(.io, "cannot read the decrypted \(name)") }
        defer { close(fd) }
        var st = stat()
        let minimum = PackFormat.headLength + PackFormat.trailerLength
        guard fstat(fd, &st) == 0, Int(st.st_size) >= minimum, Int(st.st_size) <= PackFormat.maxPackLength else {
            throw StoreError(.integrity, "\(name) has an implausible size")
        }
        let size = Int(st.st_size)
        func read(_ count: Int, at offset: Int) throws(StoreError) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            guard pread(fd, &bytes, count, off_t(offset)) == count else { throw StoreError(.io, "cannot read \(name)") }
            return bytes
        }
        let trailer = try read(PackFormat.trailerLength, at: size - PackFormat.trailerLength)
        let tailLength = PackFormat.tailLength(trailer: trailer)
        guard tailLength + PackFormat.headLength <= size else { throw StoreError(.integrity, "\(name) is malformed: its table does not fit") }
        // Magic, then table and trailer: parseTable checks them against each other
        // with the data area represented only by its length.
        let head = try read(PackFormat.headLength, at: 0)
        let tail = try read(tailLength, at: size - tailLength)
        do {
            return try PackFormat.parseTable(head: head, dataLength: size - head.count - tail.count, tail: tail, name: name)
        } catch {
            throw StoreError(.integrity, error.description)
        }
    }
}

/// The decrypted packs of one repository. Thread-safe.
final class PackCache: @unchecked Sendable {
    let opener: PackOpener
    private let condition = Condition()
    private var opened: [String: OpenedPack] = [:]
    /// Packs that do not open (damaged, forged, missing everywhere). A pack
    /// a source could not be read for (`.io`: down, a timeout) is not
    /// remembered: asked for again, it is tried again.
    private var failed: [String: StoreError] = [:]
    /// Packs being decrypted now (by either thread).
    private var opening: Set<String> = []
    /// Packs the prefetcher decrypted that no one has asked for yet.
    private var waiting: Set<String> = []
    private var prefetcher: (stopping: Bool, finished: Bool)?
    private(set) var decryptedCount = 0

    init(opener: PackOpener) { self.opener = opener }

    /// The pack, decrypted: at once if it is already, after the prefetcher
    /// if it is decrypting it, else on this thread.
    func pack(_ pack: String) throws(StoreError) -> OpenedPack {
        let ready: Result<OpenedPack, StoreError>? = condition.withLock {
            while opening.contains(pack) { condition.wait() }
            if let o = opened[pack] {
                waiting.remove(pack)
                condition.broadcast()
                return .success(o)
            }
            if let error = failed[pack] { return .failure(error) }
            opening.insert(pack)
            return nil
        }
        if let ready { return try ready.get() }
        return try settle(pack, opener.open(pack), waiting: false).get()
    }

    /// Records the outcome of decrypting a pack.
    private func settle(_ pack: String, _ result: Result<OpenedPack, StoreError>, waiting isWaiting: Bool) -> Result<OpenedPack, StoreError> {
        condition.withLock {
            opening.remove(pack)
            switch result {
            case .success(let o):
                opened[pack] = o
                decryptedCount += 1
                if isWaiting { waiting.insert(pack) }
            case .failure(let e):
                if e.code != .io { failed[pack] = e }
            }
            condition.broadcast()
        }
        return result
    }

    /// The pack if it is decrypted now (no waiting, no decrypting).
    func peek(_ pack: String) -> OpenedPack? { condition.withLock { opened[pack] } }

    /// Whether a pack is decrypted already (or known not to open).
    func isKnown(_ pack: String) -> Bool { condition.withLock { opened[pack] != nil || failed[pack] != nil } }

    /// Removes a decrypted pack from the work directory once it is no longer needed.
    func release(_ pack: String) {
        let path = condition.withLock { () -> String? in
            waiting.remove(pack)
            condition.broadcast()
            return opened.removeValue(forKey: pack)?.path
        }
        if let path { unlink(path) }
    }

    /// Starts decrypting `packs`, in that order, on a thread of its own,
    /// keeping at most `ahead` of them waiting to be asked for.
    func prefetch(_ packs: [String], ahead: Int) {
        precondition(condition.withLock { prefetcher == nil }, "one prefetch at a time")
        condition.withLock { prefetcher = (false, false) }
        Threads.start(name: "fbk-prefetch") { [self] in
            for pack in packs {
                let go = condition.withLock { () -> Bool in
                    while waiting.count >= ahead && !(prefetcher?.stopping ?? true) { condition.wait() }
                    guard !(prefetcher?.stopping ?? true), opened[pack] == nil, failed[pack] == nil, !opening.contains(pack) else {
                        return false
                    }
                    opening.insert(pack)
                    return true
                }
                // A pack marked as opening is always settled, so no one waits on it for ever.
                if go { _ = settle(pack, opener.open(pack), waiting: true) }
                if condition.withLock({ prefetcher?.stopping ?? true }) { break }
            }
            condition.withLock {
                prefetcher?.finished = true
                condition.broadcast()
            }
        }
    }

    /// Stops the prefetcher and removes the packs it decrypted that were never asked for.
    func stopPrefetching() {
        let unused = condition.withLock { () -> [String] in
            guard prefetcher != nil else { return [] }
            prefetcher?.stopping = true
            condition.broadcast()
            while !(prefetcher?.finished ?? true) { condition.wait() }
            prefetcher = nil
            defer { waiting.removeAll() }
            return waiting.compactMap { opened.removeValue(forKey: $0)?.path }
        }
        for path in unused { unlink(path) }
    }
}

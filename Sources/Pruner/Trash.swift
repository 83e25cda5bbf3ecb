// Where prune puts what it removes (FORMAT.md 14): a directory of the
// storage that no client can write (client names start with a letter or
// digit; nginx serves only those), on the same server, so a removal is one
// move and can be undone until the trash is purged.
//
//     .fbk-trash/CLIENT/YYYYMMDDTHHMMSSZ/PATH      removed by the prune run at that time
//     .fbk-trash/CLIENT/retired/snapshots/ID.catalog
//                                                 catalogs of removed snapshots whose
//                                                 listing is kept (it maps packs that survive)
//     .fbk-trash/CLIENT/pruned/RUN.list, RUN-restored.list
//                                                 what each run removed and put back
//                                                 (PrunedLog): mirror-sync never brings them back
//
// The same on a storage root (renames) and through a WebDAV account of
// deploy/nginx/fbk-prune.conf (MOVE, DELETE).

import Backend
import Checker
import FoundationEssentials
import Glibc
import Format
import Platform

public final class Trash {
    /// The trash directory's name at the top of the storage.
    public static let directoryName = Checker.trashDirectory

    /// The client's directory, and its trash directory.
    let storage: any RemovableStorage
    let area: any RemovableStorage
    private var runCache: [(name: String, time: Date)]?
    private var restoredNow: [String] = []

    public init(storage: any RemovableStorage, area: any RemovableStorage) {
        self.storage = storage
        self.area = area
    }

    /// Run directories (their times) holding removed objects, oldest first.
    func runs() throws(StoreError) -> [(name: String, time: Date)] {
        if let runCache { return runCache }
        let found = try mapped { () throws(BackendError) in try area.members(of: "") }
            .filter(\.isDirectory).compactMap { m in Timestamp.parseCompact(m.name).map { (m.name, $0) } }
            .sorted { $0.1 < $1.1 }
        runCache = found
        return found
    }

    /// Where a removed `path` lies in the trash (newest run first), with its size and time.
    func find(_ path: String) throws(StoreError) -> StoredObject? {
        for run in try runs().reversed() {
            do throws(BackendError) {
                let o = try area.stat(run.name + "/" + path)
                return StoredObject(path: run.name + "/" + path, size: o.size, received: o.received)
            } catch where error.kind == .notFound {
                continue
            } catch {
                throw error.storeError
            }
        }
        return nil
    }

    /// Records the paths a run is about to remove, before it moves any.
    func note(removing paths: [String], run: String) throws(StoreError) {
        try write(PrunedLog.removed(run: run), paths)
    }

    /// Moves a client's object into the trash run `run` (one move: the
    /// receipt time stays the object's).
    func remove(_ path: String, run: String) throws(StoreError) {
        Self.testHook()
        try mapped { () throws(BackendError) in try storage.move(path, to: area, as: run + "/" + path) }
    }

    /// Moves a catalog aside, out of the client's directory, while its listing is kept.
    func retire(_ path: String) throws(StoreError) {
        Self.testHook()
        try mapped { () throws(BackendError) in try storage.move(path, to: area, as: Checker.retiredDirectory + "/" + path) }
    }

    /// Moves a retired catalog into the trash run `run`.
    func discardRetired(_ path: String, run: String) throws(StoreError) {
        Self.testHook()
        try mapped { () throws(BackendError) in try area.move(Checker.retiredDirectory + "/" + path, to: area, as: run + "/" + path) }
    }

    /// Puts a trashed object (`find`'s path) back where it was; `finish` records it.
    func restore(_ trashed: String, as path: String) throws(StoreError) {
        Self.testHook()
        try mapped { () throws(BackendError) in try area.move(trashed, to: storage, as: path) }
        restoredNow.append(path)
    }

    /// Records what this run put back.
    func finish(run: String) throws(StoreError) {
        guard !restoredNow.isEmpty else { return }
        try write(PrunedLog.restored(run: run), restoredNow)
        restoredNow = []
    }

    /// The catalogs moved aside, with when the server received them.
    func retired() throws(StoreError) -> [(path: String, bytes: [UInt8], received: Date)] {
        var out: [(path: String, bytes: [UInt8], received: Date)] = []
        for m in try mapped({ () throws(BackendError) in try area.members(of: Checker.retiredDirectory + "/snapshots") }) where !m.isDirectory {
            let path = "snapshots/" + m.name
            guard ObjectName(parsing: path)?.kind == .catalog else { continue }
            do throws(BackendError) {
                let o = try area.stat(Checker.retiredDirectory + "/" + path)
                let bytes = try area.read(Checker.retiredDirectory + "/" + path, limit: ObjectLimits.document, what: "retired catalog")
                out.append((path, bytes, o.received ?? Date()))
            } catch {
                continue
            }
        }
        return out
    }

    /// Deletes trash runs older than `grace`. Returns how many objects and bytes went.
    /// A run holding objects the storage still locks stays, named in `locked`.
    func purge(olderThan grace: TimeInterval, now: Date, dryRun: Bool, locked: inout [String]) throws(StoreError) -> (objects: Int, bytes: Int) {
        var objects = 0, bytes = 0
        for run in try runs() where now.timeIntervalSince(run.time) > grace {
            var pending = [run.name]
            while let directory = pending.popLast() {
                for m in try mapped({ () throws(BackendError) in try area.members(of: directory) }) {
                    let path = directory + "/" + m.name
                    if m.isDirectory {
                        if path.split(separator: "/").count < 8 { pending.append(path) }
                    } else {
                        objects += 1
                        bytes += (try? area.stat(path).size) ?? 0
                    }
                }
            }
            if !dryRun {
                do throws(BackendError) {
                    try area.delete(run.name)
                } catch where error.retainedUntil != nil {
                    locked.append("\(Self.directoryName)/…/\(run.name) until \(Timestamp.rfc3339(error.retainedUntil!))")
                } catch {
                    throw StoreError(.io, "the trash \(area.location): \(error.message)", cause: error)
                }
            }
        }
        if !dryRun { runCache = nil }
        return (objects, bytes)
    }

    private func write(_ path: String, _ lines: [String]) throws(StoreError) {
        let local = PrivateDirectory.temporaryDirectory + "/fbk-prune-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(local) }
        let bytes = Array(lines.map { $0 + "\n" }.joined().utf8)
        do { try DurableFile.replace(local, with: bytes, mode: 0o600) } catch { throw error }
        _ = try mapped { () throws(BackendError) in try area.put(path, from: local, size: bytes.count) }
    }

    private func mapped<R>(_ body: () throws(BackendError) -> R) throws(StoreError) -> R {
        do { return try body() } catch { throw StoreError(.io, "the trash \(area.location): \(error.message)", cause: error) }
    }

    /// For the crash tests: `FBK_TEST_PRUNE_KILL_AFTER=N` kills the process
    /// (SIGKILL) before its N+1st move, `FBK_TEST_PRUNE_MOVE_DELAY_MS` slows
    /// each move, so a snapshot can run while prune does.
    private static let killAfter = ProcessInfo.processInfo.environment["FBK_TEST_PRUNE_KILL_AFTER"].flatMap { Int($0) }
    private static let moveDelay = ProcessInfo.processInfo.environment["FBK_TEST_PRUNE_MOVE_DELAY_MS"].flatMap { UInt32($0) }
    nonisolated(unsafe) private static var moves = 0

    static func testHook() {
        if let killAfter, moves >= killAfter { kill(getpid(), SIGKILL) }
        moves += 1
        if let moveDelay { usleep(moveDelay * 1000) }
    }
}

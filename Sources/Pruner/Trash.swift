// Where prune puts what it removes (FORMAT.md, "Retention"): a directory
// of the storage root that no client can write (client names start with a
// letter or digit; nginx serves only those), on the same filesystem, so a
// removal is one rename and can be undone until the trash is purged.
//
//     ROOT/.fbk-trash/CLIENT/YYYYMMDDTHHMMSSZ/PATH   removed by the prune run at that time
//     ROOT/.fbk-trash/CLIENT/retired/snapshots/ID.catalog
//                                                  catalogs of removed snapshots whose
//                                                  listing is kept (it maps packs that survive)
//     ROOT/.fbk-trash/CLIENT/pruned.list          every path prune removed, one per line:
//                                                  mirror-sync never brings them back

import Backend
import Checker
import Foundation
import Format
import Platform

public struct Trash {
    /// The trash directory's name in a storage root.
    public static let directoryName = Checker.trashDirectory

    let root: String
    let client: String
    var directory: String { root + "/" + Self.directoryName + "/" + client }
    var retired: String { directory + "/retired" }
    var prunedList: String { directory + "/pruned.list" }

    public init(storageRoot: String, client: String) {
        root = storageRoot
        self.client = client
    }

    /// The paths prune removed, ever (read by mirror-sync).
    public func prunedPaths() -> Set<String> {
        guard let text = try? String(contentsOfFile: prunedList, encoding: .utf8) else { return [] }
        return Set(text.split(separator: "\n").map(String.init))
    }

    /// Run directories (their times) holding removed objects.
    func runs() -> [(name: String, time: Date)] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap { name in
            Timestamp.parseCompact(name).map { (name, $0) }
        }.sorted { $0.time < $1.time }
    }

    /// Where a removed `path` lies in the trash, if it does (newest run first).
    func find(_ path: String) -> String? {
        for run in runs().reversed() {
            let candidate = directory + "/" + run.name + "/" + path
            var st = stat()
            if lstat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { return candidate }
        }
        return nil
    }

    /// Moves a client's object into the trash run `run` (one rename: the
    /// receipt time stays the file's). Appends it to pruned.list first.
    func remove(_ path: String, run: String) throws(StoreError) {
        try note(path)
        try move(root + "/" + client + "/" + path, to: directory + "/" + run + "/" + path)
    }

    /// Moves a catalog aside, out of the client's directory, while its listing is kept.
    func retire(_ path: String) throws(StoreError) {
        try note(path)
        try move(root + "/" + client + "/" + path, to: retired + "/" + path)
    }

    /// Moves a retired catalog into the trash run `run`.
    func discardRetired(_ path: String, run: String) throws(StoreError) {
        try move(retired + "/" + path, to: directory + "/" + run + "/" + path)
    }

    /// Puts a trashed object back where it was (a late catalog names it).
    func restore(_ trashed: String, as path: String) throws(StoreError) {
        try move(trashed, to: root + "/" + client + "/" + path)
        var text = (try? String(contentsOfFile: prunedList, encoding: .utf8)) ?? ""
        text = text.split(separator: "\n").filter { $0 != path }.map { $0 + "\n" }.joined()
        do { try DurableFile.replace(prunedList, with: Array(text.utf8), mode: 0o640) } catch { throw error }
    }

    /// Deletes trash runs older than `grace`. Returns how many objects and bytes went.
    func purge(olderThan grace: TimeInterval, now: Date, dryRun: Bool) -> (objects: Int, bytes: Int) {
        var objects = 0, bytes = 0
        for run in runs() where now.timeIntervalSince(run.time) > grace {
            let path = directory + "/" + run.name
            if let e = FileManager.default.enumerator(atPath: path) {
                while let rel = e.nextObject() as? String {
                    var st = stat()
                    if lstat(path + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
                        objects += 1
                        bytes += Int(st.st_size)
                    }
                }
            }
            if !dryRun { try? FileManager.default.removeItem(atPath: path) }
        }
        return (objects, bytes)
    }

    private func note(_ path: String) throws(StoreError) {
        try makeDirectory(directory)
        guard let f = fopen(prunedList, "a") else {
            throw StoreError(.io, "cannot write \(prunedList): \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        guard fputs(path + "\n", f) >= 0, fflush(f) == 0, fsync(fileno(f)) == 0 else {
            throw StoreError(.io, "cannot write \(prunedList): \(String(cString: strerror(errno)))")
        }
    }

    private func move(_ from: String, to: String) throws(StoreError) {
        Self.testHook()
        try makeDirectory((to as NSString).deletingLastPathComponent)
        guard rename(from, to) == 0 else {
            throw StoreError(.io, "cannot move \(from) to \(to): \(String(cString: strerror(errno)))")
        }
    }

    /// For the crash tests: `FBK_TEST_PRUNE_KILL_AFTER=N` kills the process
    /// (SIGKILL) before its N+1st move, `FBK_TEST_PRUNE_MOVE_DELAY_MS` slows
    /// each move, so a snapshot can run while prune does.
    private static let killAfter = ProcessInfo.processInfo.environment["FBK_TEST_PRUNE_KILL_AFTER"].flatMap { Int($0) }
    private static let moveDelay = ProcessInfo.processInfo.environment["FBK_TEST_PRUNE_MOVE_DELAY_MS"].flatMap { UInt32($0) }
    nonisolated(unsafe) private static var moves = 0

    private static func testHook() {
        if let killAfter, moves >= killAfter { kill(getpid(), SIGKILL) }
        moves += 1
        if let moveDelay { usleep(moveDelay * 1000) }
    }

    private func makeDirectory(_ path: String) throws(StoreError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        } catch {
            throw StoreError(.io, "cannot create \(path): \(error.localizedDescription)")
        }
    }
}

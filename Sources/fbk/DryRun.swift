// `fbk snapshot --dry-run`: the whole run against a private copy of the
// index, with every mirror replaced by a sink that takes each object,
// counts it and keeps nothing. The real index and spool are not touched
// (the copy's spool is empty: nothing real is delivered and dropped), no
// mirror is contacted, and the summary says what would be new.

import FoundationEssentials
import Glibc
import Backend
import Config
import Format
import Index
import Platform

/// A mirror that takes every upload and keeps nothing: what a dry run
/// uploads to. Nothing can be read from it.
final class DiscardingBackend: Backend, @unchecked Sendable {
    let location: String
    init(location: String) { self.location = location }

    func put(_ path: String, from localFile: String, size: Int) throws(BackendError) -> PutOutcome { .stored }

    private func nothing() -> BackendError { BackendError(.permanent, location: location, "a dry run reads nothing from a mirror") }
    func fetch(_ path: String, limit: Int) throws(BackendError) -> FetchedObject { throw nothing() }
    func fetch(_ path: String, range: Range<Int>) throws(BackendError) -> [UInt8] { throw nothing() }
    func stat(_ path: String) throws(BackendError) -> StoredObject { throw nothing() }
    func list(_ kind: ObjectKind) throws(BackendError) -> [StoredObject] { throw nothing() }
    func inventory() throws(BackendError) -> Inventory { throw nothing() }
}

/// The configuration and index a dry run works on: the state moved to a
/// private directory holding a copy of the index, the real state left out
/// of the walk as fbk's own state always is.
struct DryRunState {
    let scratch: PrivateDirectory
    let config: ClientConfig

    init(_ c: ClientConfig) throws {
        scratch = try PrivateDirectory(prefix: "fbk-dry-run")
        var copy = c
        copy.state = scratch.path
        // As a full path without a trailing slash: an exclude pattern starting with / takes all below it.
        copy.excludes.append(URL(fileURLWithPath: c.state).standardizedFileURL.path)
        config = copy
        // The state lock is held: no writer; the WAL goes with its database.
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: c.indexPath + suffix) {
            try FileManager.default.copyItem(atPath: c.indexPath + suffix, toPath: copy.indexPath + suffix)
        }
        if !FileManager.default.fileExists(atPath: copy.indexPath) { _ = try Index.create(path: copy.indexPath) }
    }

    func remove() { scratch.remove() }
}

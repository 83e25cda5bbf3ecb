// Copying what one mirror's storage has and the other lacks, without
// decrypting anything: the operator's repair after a mirror was down
// longer than a client's spool could cover. Create-only, like every write
// to a mirror: an object the destination has is never touched.

import Backend
import Format
import FoundationEssentials
import Glibc
import Platform

public enum MirrorSync {
    /// Copies every object of each client (all the source's, by default)
    /// that the destination lacks. Returns how many were copied per client.
    public static func run(source: String, destination: String, clients: [String]?) throws(StoreError) -> [String: Int] {
        try run(source: LocalStorageRoot(source), destination: LocalStorageRoot(destination), clients: clients)
    }

    /// The same between any two storage roots (directories, buckets).
    public static func run(source: any StorageRoot, destination: any StorageRoot, clients: [String]?) throws(StoreError) -> [String: Int] {
        var copied: [String: Int] = [:]
        let names: [String]
        if let clients { names = clients } else {
            do { names = try source.topLevel() } catch { throw error.storeError }
        }
        for client in names where !client.hasPrefix(".") {
            // What prune removed from the destination stays removed.
            let pruned = PrunedLog.paths(trash: try? destination.directory(Checker.trashDirectory + "/" + client))
            guard let from = try? source.client(client) else { continue }
            let target = try destination.directory(client)
            do {
                for object in try from.inventory().objects where !object.path.hasPrefix(".") && !pruned.contains(object.path) {
                    let local = try from.fetch(object.path, limit: .max)
                    if try target.put(object.path, from: local.path, size: local.size) == .stored {
                        copied[client, default: 0] += 1
                    }
                }
            } catch {
                throw StoreError(.io, "\(client): \(error)", cause: error)
            }
        }
        return copied
    }
}

/// What `fbk prune` removed from a client's directory, as it records it in
/// its trash (FORMAT.md 14): `pruned/RUN.list`, written before a run moves
/// anything, and `pruned/RUN-restored.list` for what it put back, one path
/// per line. Read in name order (a run puts back before it removes), the
/// files say which paths are removed now: mirror-sync never copies those.
public enum PrunedLog {
    public static let directory = "pruned"
    public static func removed(run: String) -> String { "\(directory)/\(run).list" }
    public static func restored(run: String) -> String { "\(directory)/\(run)-restored.list" }

    /// The paths removed and not put back, from the log's files (name, text).
    public static func paths(_ files: [(name: String, text: String)]) -> Set<String> {
        var removed = Set<String>()
        for (name, text) in files.sorted(by: { $0.name < $1.name }) {
            let paths = text.split(separator: "\n").map(String.init)
            if name.hasSuffix("-restored.list") { removed.subtract(paths) } else if name.hasSuffix(".list") { removed.formUnion(paths) }
        }
        return removed
    }

    /// The same from a client's trash directory (`.fbk-trash/CLIENT/`).
    public static func paths(trash: (any Backend)?) -> Set<String> {
        guard let trash, let members = try? (trash as? any RemovableStorage)?.members(of: directory) else { return [] }
        return paths(members.filter { !$0.isDirectory }.compactMap { m in
            (try? trash.read(directory + "/" + m.name, limit: ObjectLimits.document, what: "prune record"))
                .map { (m.name, String(decoding: $0, as: UTF8.self)) }
        })
    }
}

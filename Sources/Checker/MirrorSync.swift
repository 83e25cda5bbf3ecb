// Copying what one mirror's storage has and the other lacks, without
// decrypting anything: the operator's repair after a mirror was down
// longer than a client's spool could cover. Create-only, like every write
// to a mirror: an object the destination has is never touched.

import Backend
import Foundation
import Platform

public enum MirrorSync {
    /// Copies every object of each client (all the source's, by default)
    /// that the destination lacks. Returns how many were copied per client.
    public static func run(source: String, destination: String, clients: [String]?) throws(StoreError) -> [String: Int] {
        // Relative roots are relative to the working directory, as for any command.
        let source = URL(fileURLWithPath: source).standardizedFileURL.path
        let destination = URL(fileURLWithPath: destination).standardizedFileURL.path
        var copied: [String: Int] = [:]
        let names = clients ?? ((try? FileManager.default.contentsOfDirectory(atPath: source)) ?? []).sorted()
        for client in names where !client.hasPrefix(".") {
            // What prune removed from the destination stays removed.
            let pruned = Set(((try? String(contentsOfFile: destination + "/" + Checker.trashDirectory + "/" + client + "/pruned.list", encoding: .utf8)) ?? "")
                .split(separator: "\n").map(String.init))
            guard let from = try? DirectoryBackend(storageRoot: source, client: client) else { continue }
            let target = try DirectoryBackend(url: "file://" + destination + "/" + client + "/")
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

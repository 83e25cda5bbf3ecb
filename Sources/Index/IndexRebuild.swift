// Rebuilding a client's index from what its mirrors hold, with the client
// secret and never the private key (FORMAT.md, "Rebuilding the index").
//
// Reads: the plaintext catalogs (signed: only the client's own count), the
// directory listings of each mirror (which objects exist, and their sizes
// as listed), and the secret-keyed pack listings (which chunk is in
// which pack, and each snapshot's root). Objects one mirror lacks are
// copied into the client's spool, so its next run delivers them there.

import FoundationEssentials
import Glibc
import Seal
import Format
import Backend
import Platform

/// One mirror to rebuild from: where to read it, and its URL as the client's configuration names it.
public struct RebuildSource {
    public var mirrorURL: String
    public var source: any Backend

    public init(mirrorURL: String, source: any Backend) {
        self.mirrorURL = mirrorURL
        self.source = source
    }
}

public struct RebuildSummary: Encodable, Sendable {
    public var snapshots = 0
    public var packs = 0
    public var chunks = 0
    /// Objects copied into the spool for a mirror that lacks them.
    public var respooled = 0
    /// Mirror URL → objects it lacks that no other source could provide.
    public var missing: [String: Int] = [:]
    public var warnings: [String] = []
    public var version = fbkVersion
}

public enum IndexRebuild {
    /// Rebuilds (or merges into) the index at `indexPath`; spool copies go to `spool/` beside it.
    public static func run(sources: [RebuildSource], keys: ClientKeys, client: String, indexPath: String) throws(StoreError) -> RebuildSummary {
        try StoreError.boundary {
            var summary = RebuildSummary()
            try FileManager.default.createDirectory(atPath: PathName.parent(indexPath),
                                                    withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let index = FileManager.default.fileExists(atPath: indexPath) ? try Index.open(path: indexPath) : try Index.create(path: indexPath)
            let spoolDirectory = PathName.parent(indexPath) + "/spool"
            try FileManager.default.createDirectory(atPath: spoolDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let verifying = keys.signingKey().publicKey

            // What each mirror holds, with the sizes its listings give. A mirror
            // that cannot be listed stops the rebuild: taking it for empty would
            // count every object as missing there.
            var present: [[String: Int]] = []   // per source: object path → size
            for s in sources {
                var objects: [String: Int] = [:]
                for kind in [ObjectKind.pack, .record, .catalog, .listing, .escrow] {
                    do throws(BackendError) {
                        for o in try s.source.list(kind) { objects[o.path] = o.size }
                    } catch {
                        throw StoreError(.io, "cannot list the \(kind.directory) of \(s.source.location): \(error.message); run the rebuild again once it answers", cause: error)
                    }
                }
                present.append(objects)
            }

            // Catalogs signed by this client say which objects make up each snapshot.
            var catalogs: [String: (Catalog, size: Int, sha: Digest)] = [:]
            for (i, s) in sources.enumerated() {
                for path in present[i].keys.sorted() where ObjectName(parsing: path)?.kind == .catalog && catalogs[path] == nil {
                    do {
                        let data = try s.source.read(path, limit: ObjectLimits.document, what: "catalog")
                        let (c, _) = try SignedDocument.decode(Catalog.self, from: data, name: path, verifyingKey: verifying)
                        guard c.client == client, ObjectName.catalog(c.snapshot).path == path else {
                            summary.warnings.append("\(path) names another client or snapshot; ignored")
                            continue
                        }
                        catalogs[path] = (c, data.count, SHA256.hash([UInt8](data)))
                    } catch {
                        summary.warnings.append("\(path): \(error); ignored (not written by this client?)")
                    }
                }
            }

            // Every object the catalogs name, with its expected size and hash.
            var expected: [String: (kind: ObjectKind, size: Int, sha: String)] = [:]
            for (path, (c, size, sha)) in catalogs {
                expected[path] = (.catalog, size, sha.hex)
                expected[c.record.path] = (.record, c.record.size, c.record.sha256)
                if let l = c.listing { expected[l.path] = (.listing, l.size, l.sha256) }
                for p in c.packs { expected[p.path] = (.pack, p.size, p.sha256) }
            }
            for (i, s) in sources.enumerated() where present[i][ObjectName.escrow.path] != nil {
                if expected[ObjectName.escrow.path] == nil, let escrow = try? s.source.fetch(ObjectName.escrow.path, limit: ObjectLimits.escrow),
                   let (digest, size) = try? SHA256.hash(fileAt: escrow.path) {
                    expected[ObjectName.escrow.path] = (.escrow, size, digest.hex)
                }
            }

            // A copy whose size differs from the catalog's is an incomplete upload: absent.
            func holds(_ i: Int, _ path: String, size: Int) -> Bool { present[i][path] == size }

            // Pack listings: chunk → pack, and each snapshot's root.
            var listings: [String: PackListingDocument] = [:]
            for (path, (c, _, _)) in catalogs {
                guard let l = c.listing else { summary.warnings.append("\(path) names no pack listing"); continue }
                for (i, s) in sources.enumerated() where holds(i, l.path, size: l.size) {
                    guard l.size <= ObjectLimits.listing else { continue }
                    let bytes: [UInt8]
                    do { bytes = try s.source.read(l.path, limit: l.size, what: "pack listing") } catch {
                        summary.warnings.append("\(l.path): \(error)")
                        continue
                    }
                    guard bytes.count == l.size, SHA256.hash(bytes).hex == l.sha256 else {
                        summary.warnings.append("\(l.path): not the listing \(path) names (SHA-256 differs)")
                        continue
                    }
                    do {
                        let listing = try PackListingDocument.open(bytes, path: l.path, keys: keys)
                        guard listing.client == client, listing.snapshot == c.snapshot else {
                            summary.warnings.append("\(l.path) names \(listing.client)/\(listing.snapshot); ignored")
                            continue
                        }
                        listings[path] = listing
                        break
                    } catch {
                        summary.warnings.append("\(l.path): \(error)")
                    }
                }
            }

            // Listings of snapshots prune removed (no catalog anywhere) still
            // map packs that survive (FORMAT.md 14): read them too, for the
            // packs some catalog lists.
            var orphanListings: [PackListingDocument] = []
            let catalogued = Set(catalogs.values.map { ObjectName.listing($0.0.snapshot).path })
            var seenOrphans = Set<String>()
            for (i, s) in sources.enumerated() {
                for path in present[i].keys.sorted() where ObjectName(parsing: path)?.kind == .listing && !catalogued.contains(path) && !seenOrphans.contains(path) {
                    guard let id = ObjectName(parsing: path)?.snapshotID, let size = present[i][path], size <= ObjectLimits.listing else { continue }
                    do {
                        let bytes = try s.source.read(path, limit: size, what: "pack listing")
                        let listing = try PackListingDocument.open(bytes, path: path, keys: keys)
                        guard listing.client == client, listing.snapshot == id else { continue }
                        orphanListings.append(listing)
                        seenOrphans.insert(path)
                    } catch {
                        summary.warnings.append("\(path) (a removed snapshot's listing): \(error)")
                    }
                }
            }

            let now = Int(WallClock.now().timeIntervalSince1970)
            // When each pack was last needed, and what it is sealed to, as
            // the catalogs say (FORMAT.md, "Retention"): a rebuilt index
            // reuses no pack a newer snapshot did not need within the
            // reuse horizon, and no pack sealed to other certificates.
            var lastNeeded: [String: Int] = [:]
            var sealedTo: [String: (time: Int, set: RecipientSet)] = [:]
            for (c, _, _) in catalogs.values {
                let t = min(now, parseRFC3339(c.created).map { Int($0.timeIntervalSince1970) } ?? 0)
                for p in c.packs {
                    lastNeeded[p.path] = max(lastNeeded[p.path] ?? 0, t)
                    if let r = c.recipients, t >= sealedTo[p.path]?.time ?? .min {
                        sealedTo[p.path] = (t, RecipientSet(r.map(\.fingerprint)))
                    }
                }
            }
            let mirrorIDs = try sources.map { try index.ledger.mirrorID($0.mirrorURL) }
            try index.transaction {
                var objectIDs: [String: Int] = [:]
                for (path, e) in expected.sorted(by: { $0.key < $1.key }) {
                    let holders = sources.indices.filter { holds($0, path, size: e.size) }
                    guard !holders.isEmpty, let sha = Digest(hex: e.sha) else {
                        for m in sources { summary.missing[m.mirrorURL, default: 0] += 1 }
                        summary.warnings.append("\(path) is on no mirror")
                        continue
                    }
                    var spool: String? = nil
                    // The client's next run delivers it to the mirrors that lack it: a copy
                    // the catalog's SHA-256 vouches for, from the first holder that has one.
                    let name = PathName.name(path)
                    let target = spoolDirectory + "/" + name
                    if holders.count < sources.count, FileManager.default.fileExists(atPath: target) {
                        spool = name
                        summary.respooled += 1
                    }
                    for i in holders where holders.count < sources.count && spool == nil {
                        do {
                            let copy = try sources[i].source.fetch(path, limit: e.size)
                            guard try SHA256.hash(fileAt: copy.path).digest == sha else {
                                summary.warnings.append("\(path) on \(sources[i].mirrorURL) is not the object its catalog names (SHA-256 differs): not copied")
                                continue
                            }
                            try FileManager.default.copyItem(atPath: copy.path, toPath: target)
                            spool = name
                            summary.respooled += 1
                        } catch {
                            summary.warnings.append("\(path) could not be copied from \(sources[i].mirrorURL) into the spool: \(error)")
                        }
                    }
                    if spool == nil {
                        for i in sources.indices where !holders.contains(i) { summary.missing[sources[i].mirrorURL, default: 0] += 1 }
                    }
                    let id = try index.ledger.recordObject(path: path, kind: e.kind, size: e.size, sha256: sha, now: lastNeeded[path] ?? now,
                                                    deliveredTo: holders.map { mirrorIDs[$0] }, spool: spool,
                                                    sealedTo: sealedTo[path]?.set)
                    objectIDs[path] = id
                    if e.kind == .pack { summary.packs += 1 }
                }
                for listing in Array(listings.values) + orphanListings {
                    for pack in listing.packs {
                        guard let packID = objectIDs[pack.path] else { continue }
                        for c in pack.chunks {
                            guard let id = Digest(hex: c.id), let kind = ChunkKind(rawValue: UInt8(clamping: c.kind)) else { continue }
                            try index.chunks.addChunk(id, pack: packID, kind: kind, plainLength: c.length)
                            summary.chunks += 1
                        }
                    }
                }
                for (path, (c, _, _)) in catalogs {
                    guard let listing = listings[path], let root = Digest(hex: listing.root),
                          let record = objectIDs[c.record.path], let catalog = objectIDs[path] else { continue }
                    try index.ledger.recordSnapshot(id: c.snapshot, started: now, finished: now, root: root, record: record,
                                             catalog: catalog, summary: "{\"rebuilt\": true}", replacing: false)
                    summary.snapshots += 1
                }
            }
            return summary

        }
    }
}

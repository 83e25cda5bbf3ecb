// The delivery ledger: durable state no server can give back. Which
// mirror (by URL) has which object, what the spool still owes to a mirror
// that was down, what was given up, and the snapshots this client took.
// Losing it costs a rebuild from the mirrors (`fbk index rebuild`).

import Backend
import Format
import FoundationEssentials
import Glibc
import Platform
import Seal
import SQLite

/// The certificates an object is sealed to, by fingerprint (hex SHA-256
/// of the DER certificate), as one sorted, comma-separated text.
package struct RecipientSet: Hashable, Sendable {
    package let fingerprints: [String]
    package init(_ fingerprints: [String]) { self.fingerprints = Set(fingerprints.map { $0.lowercased() }).sorted() }
    package var text: String { fingerprints.joined(separator: ",") }
    /// 16 hex digits naming the set (an escrow sealed to it: `keys/client-secret-TAG.cms`).
    package var tag: String { String(SHA256.hash(Array(text.utf8)).hex.prefix(16)) }
}

/// A mirror as the index knows it: the row of its URL. Delivery is
/// recorded per mirror, so a respelled URL keeps what it was delivered.
package struct MirrorID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: Int
    package init(_ rawValue: Int) { self.rawValue = rawValue }
    public static func < (a: MirrorID, b: MirrorID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "#\(rawValue)" }
}

package final class DeliveryLedger: IndexPartAccess {
    /// The row ID of a mirror URL, created on first use. URLs that name
    /// the same place (`…/pi/` and `…/pi`, `HTTP://Host:80/`) are one mirror,
    /// so a respelled URL in the configuration keeps what it was delivered.
    package func mirrorID(_ url: String) throws(StoreError) -> MirrorID {
        try guarded {
        let identity = MirrorIdentity(url)
        let all = try db.statement("SELECT id, url FROM mirrors ORDER BY id")
        var found: Int?
        while try all.step() {
            if found == nil && MirrorIdentity(all.text(1)) == identity { found = all.int(0) }
        }
        if let found { return MirrorID(found) }
        let insert = try db.statement("INSERT INTO mirrors(url) VALUES (?)")
        insert.bind(1, url)
        try insert.run()
        return MirrorID(db.lastInsertedRow)
        }
    }

    /// An object the ledger knows: stored on at least one mirror.
    package struct LedgerObject: Sendable {
        public var id: Int
        public var path: String
        public var kind: ObjectKind
        public var size: Int
        public var sha256: Digest
        public var spool: String?
    }

    /// Records an object stored on `mirrors` (at least one), with its spool
    /// copy if some configured mirror still lacks it; in the caller's transaction.
    @discardableResult
    package func recordObject(path: String, kind: ObjectKind, size: Int, sha256: Digest, now: Int,
                              deliveredTo mirrors: [MirrorID], spool: String?, sealedTo: RecipientSet? = nil,
                              contentBytes: Int? = nil) throws(StoreError) -> Int {
        try guarded {
        let s = try db.statement("""
            INSERT INTO objects(path, kind, size, sha256, created, last_referenced, spool, sealed_to, content_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(path) DO UPDATE SET spool = excluded.spool RETURNING id
            """)
        s.bind(1, path); s.bind(2, kind.rawValue); s.bind(3, size); s.bind(4, sha256.bytes); s.bind(5, now); s.bind(6, now)
        if let spool { s.bind(7, spool) } else { s.bindNull(7) }
        if let sealedTo { s.bind(8, sealedTo.text) } else { s.bindNull(8) }
        if let contentBytes { s.bind(9, contentBytes) } else { s.bindNull(9) }
        guard try s.step() else { throw StoreError(.index, "cannot record \(path)") }
        let id = s.int(0)
        try s.run()
        for m in mirrors { try markDelivered(object: id, mirror: m) }
        return id
        }
    }

    package func hasObject(path: String) throws(StoreError) -> Bool {
        try guarded {
        let s = try db.statement("SELECT 1 FROM objects WHERE path = ?")
        s.bind(1, path)
        return try s.step()
        }
    }

    package func markDelivered(object: Int, mirror: MirrorID) throws(StoreError) {
        try guarded {
        let d = try db.statement("INSERT OR IGNORE INTO delivered(object, mirror) VALUES (?, ?)")
        d.bind(1, object); d.bind(2, mirror.rawValue)
        try d.run()
        let a = try db.statement("DELETE FROM abandoned WHERE object = ? AND mirror = ?")
        a.bind(1, object); a.bind(2, mirror.rawValue)
        try a.run()
        }
    }

    /// Objects with a spool copy, with the mirrors (IDs) that lack them.
    package func owedObjects(mirrors: [MirrorID]) throws(StoreError) -> [(LedgerObject, missing: [MirrorID])] {
        try guarded {
        let s = try db.statement("SELECT id, path, kind, size, sha256, spool FROM objects WHERE spool IS NOT NULL ORDER BY id")
        var result: [(LedgerObject, [MirrorID])] = []
        var rows: [LedgerObject] = []
        while try s.step() { rows.append(try ledgerObject(s)) }
        for o in rows {
            let missing = try mirrors.filter { m in try !isDelivered(object: o.id, mirror: m) }
            result.append((o, missing))
        }
        return result
        }
    }

    func isDelivered(object: Int, mirror: MirrorID) throws(StoreError) -> Bool {
        try guarded {
        let s = try db.statement("SELECT 1 FROM delivered WHERE object = ? AND mirror = ?")
        s.bind(1, object); s.bind(2, mirror.rawValue)
        return try s.step()
        }
    }

    package func clearSpool(object: Int) throws(StoreError) {
        try guarded {
        let s = try db.statement("UPDATE objects SET spool = NULL WHERE id = ?")
        s.bind(1, object)
        try s.run()
        }
    }

    package func abandon(object: Int, mirror: MirrorID) throws(StoreError) {
        try guarded {
        let s = try db.statement("INSERT OR IGNORE INTO abandoned(object, mirror) VALUES (?, ?)")
        s.bind(1, object); s.bind(2, mirror.rawValue)
        try s.run()
        }
    }

    /// Total bytes held in the spool.
    package func spoolBytes() throws(StoreError) -> Int {
        try guarded {
        let s = try db.statement("SELECT coalesce(sum(size), 0) FROM objects WHERE spool IS NOT NULL")
        try s.step()
        return s.int(0)
        }
    }

    /// Spool files the index knows, for cleaning up strays.
    package func spoolFiles() throws(StoreError) -> Set<String> {
        try guarded {
        let s = try db.statement("SELECT spool FROM objects WHERE spool IS NOT NULL")
        var out = Set<String>()
        while try s.step() { out.insert(s.text(0)) }
        return out
        }
    }

    package func object(id: Int) throws(StoreError) -> LedgerObject? {
        try guarded {
        let s = try db.statement("SELECT id, path, kind, size, sha256, spool FROM objects WHERE id = ?")
        s.bind(1, id)
        guard try s.step() else { return nil }
        return try ledgerObject(s)
        }
    }

    /// How many of `objects` each mirror lacks.
    package func missingCounts(objects: Set<Int>, mirrors: [MirrorID]) throws(StoreError) -> [MirrorID: Int] {
        try guarded {
        var out: [MirrorID: Int] = [:]
        for m in mirrors {
            var missing = 0
            for o in objects where try !isDelivered(object: o, mirror: m) { missing += 1 }
            out[m] = missing
        }
        return out
        }
    }

    /// The packs a snapshot may deduplicate against (FORMAT.md, "Retention"):
    /// needed by a snapshot at or after `since` (Unix seconds), and sealed
    /// to exactly `recipients`. Chunks in any other pack count as absent.
    package func reusablePacks(since: Int, recipients: RecipientSet) throws(StoreError) -> Set<Int> {
        try guarded {
        let s = try db.statement("SELECT id FROM objects WHERE kind = 'pack' AND last_referenced >= ? AND sealed_to = ? AND renew = 0")
        s.bind(1, since); s.bind(2, recipients.text)
        var out = Set<Int>()
        while try s.step() { out.insert(s.int(0)) }
        return out
        }
    }

    /// Packs recorded before the index kept recipients (ledger 1) are
    /// taken as sealed to `recipients`: those of the first run after the
    /// upgrade (change recipients only after one run of the new fbk).
    package func adoptUnknownRecipients(_ recipients: RecipientSet) throws(StoreError) {
        try guarded {
        let s = try db.statement("UPDATE objects SET sealed_to = ? WHERE sealed_to IS NULL AND kind IN ('pack', 'escrow')")
        s.bind(1, recipients.text)
        try s.run()
        }
    }

    /// The plain bytes each pack held when stored (for rows from before
    /// ledger 2, what its chunk rows hold now), for the packs in `ids`.
    package func contentBytes(of ids: Set<Int>) throws(StoreError) -> [Int: Int] {
        try guarded {
        var out: [Int: Int] = [:]
        let s = try db.statement("""
            SELECT o.id, coalesce(o.content_bytes, (SELECT coalesce(sum(plain_length), 0) FROM chunks c WHERE c.pack = o.id))
            FROM objects o WHERE o.kind = 'pack'
            """)
        while try s.step() { if ids.contains(s.int(0)) { out[s.int(0)] = s.int(1) } }
        return out
        }
    }

    /// Marks packs as no longer reused: their live chunks are stored again
    /// as snapshots meet them, and their dead bytes become removable.
    package func markForRenewal(_ ids: [Int]) throws(StoreError) {
        try guarded {
        for id in ids {
            let s = try db.statement("UPDATE objects SET renew = 1 WHERE id = ?")
            s.bind(1, id)
            try s.run()
        }
        }
    }

    /// The directories a mirror is known to have.
    package func directories(mirror: MirrorID) throws(StoreError) -> Set<String> {
        try guarded {
        let s = try db.statement("SELECT path FROM directories WHERE mirror = ?")
        s.bind(1, mirror.rawValue)
        var out = Set<String>()
        while try s.step() { out.insert(s.text(0)) }
        return out
        }
    }

    package func recordDirectories(_ paths: Set<String>, mirror: MirrorID) throws(StoreError) {
        try guarded {
        for p in paths {
            let s = try db.statement("INSERT OR IGNORE INTO directories(mirror, path) VALUES (?, ?)")
            s.bind(1, mirror.rawValue); s.bind(2, p)
            try s.run()
        }
        }
    }

    /// Whether an escrow sealed to exactly `recipients` was stored, and whether any was.
    package func escrows(sealedTo recipients: RecipientSet) throws(StoreError) -> (matching: Bool, any: Bool) {
        try guarded {
        let s = try db.statement("SELECT sealed_to FROM objects WHERE kind = 'escrow'")
        var matching = false, any = false
        while try s.step() {
            any = true
            if !s.isNull(0) && s.text(0) == recipients.text { matching = true }
        }
        return (matching, any)
        }
    }

    package func touch(objects: Set<Int>, at now: Int) throws(StoreError) {
        try guarded {
        for o in objects {
            let s = try db.statement("UPDATE objects SET last_referenced = max(last_referenced, ?) WHERE id = ?")
            s.bind(1, now); s.bind(2, o)
            try s.run()
        }
        }
    }

    package func recordSnapshot(id: SnapshotID, started: Int, finished: Int, root: ChunkID, record: Int, catalog: Int, summary: String,
                        replacing: Bool = true) throws(StoreError) {
        try guarded {
        let s = try replacing
            ? db.statement("INSERT INTO snapshots(id, started, finished, root, record, catalog, summary) VALUES (?, ?, ?, ?, ?, ?, ?)")
            : db.statement("INSERT OR IGNORE INTO snapshots(id, started, finished, root, record, catalog, summary) VALUES (?, ?, ?, ?, ?, ?, ?)")
        s.bind(1, id.text); s.bind(2, started); s.bind(3, finished); s.bind(4, root.bytes)
        s.bind(5, record); s.bind(6, catalog); s.bind(7, summary)
        try s.run()
        }
    }

    /// What the newest recorded snapshot scanned (from its summary), the
    /// likely total of the next run; nil without one.
    package func lastSnapshotBytesScanned() throws(StoreError) -> UInt64? {
        try guarded {
        let s = try db.statement("SELECT summary FROM snapshots ORDER BY finished DESC LIMIT 1")
        guard try s.step() else { return nil }
        struct Scanned: Decodable { var bytes_scanned: UInt64? }
        let summary = try? JSONDecoder().decode(Scanned.self, from: Data(s.text(0).utf8))
        _ = try s.step()
        return summary?.bytes_scanned
        }
    }

    package var snapshotIDs: [SnapshotID] {
        get throws(StoreError) {
            try guarded {
            let s = try db.statement("SELECT id FROM snapshots ORDER BY started")
            var out: [SnapshotID] = []
            while try s.step() { if let id = SnapshotID(s.text(0)) { out.append(id) } }
            return out
            }
        }
    }

    /// A row of `objects` (id, path, kind, size, sha256, spool).
    private func ledgerObject(_ s: borrowing Statement) throws -> LedgerObject {
        guard let kind = ObjectKind(rawValue: s.text(2)), let sha = Digest(bytes: s.blob(4)) else {
            throw StoreError(.index, "the index \(path) is damaged: object \(s.text(1)) has kind \(s.text(2)) and a \(s.blob(4).count)-byte hash")
        }
        return LedgerObject(id: s.int(0), path: s.text(1), kind: kind, size: s.int(3), sha256: sha, spool: s.isNull(5) ? nil : s.text(5))
    }
}

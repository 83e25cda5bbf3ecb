// The index's tables in two parts, each with its own version and named
// migrations (FORMAT.md, "The local index"):
// - the ledger, durable state no server can give back: which mirror has
//   which object, what the spool still owes, the snapshots taken;
// - the caches, rebuildable: chunk → pack (from the pack listings, by
//   `fbk index rebuild`) and the files cache (by reading the files again).
// A part written by a newer fbk is refused; an older one is migrated, step
// by named step, in one transaction.


/// One versioned part of the index.
enum IndexPart: String, CaseIterable {
    case ledger, caches

    /// The version this fbk writes and reads.
    var currentVersion: Int {
        switch self {
        case .ledger: 2
        case .caches: 1
        }
    }

    /// The `meta` key holding the part's version.
    var versionKey: String { rawValue + "_version" }

    /// The tables of the part's current version.
    var schema: String {
        switch self {
        case .ledger: """
            CREATE TABLE mirrors(id INTEGER PRIMARY KEY, url TEXT NOT NULL UNIQUE);
            -- Every object stored on at least one mirror: packs, snapshot records, catalogs, listings, the escrow.
            CREATE TABLE objects(
                id INTEGER PRIMARY KEY,
                path TEXT NOT NULL UNIQUE,          -- relative to the client directory
                kind TEXT NOT NULL CHECK (kind IN ('pack', 'record', 'catalog', 'escrow', 'listing')),
                size INTEGER NOT NULL,
                sha256 BLOB NOT NULL,
                created INTEGER NOT NULL,           -- unix seconds
                last_referenced INTEGER NOT NULL,   -- unix seconds of the newest snapshot needing it
                spool TEXT,                         -- file name in the spool directory while a mirror still lacks it
                sealed_to TEXT,                     -- sorted certificate fingerprints, comma-separated (NULL: recorded before ledger 2)
                content_bytes INTEGER,              -- a pack's chunks' plain bytes when stored (NULL: recorded before ledger 2)
                renew INTEGER NOT NULL DEFAULT 0    -- 1: a pack mostly dead, no longer reused (its live chunks are stored again)
            );
            CREATE TABLE delivered(object INTEGER NOT NULL REFERENCES objects(id),
                                   mirror INTEGER NOT NULL REFERENCES mirrors(id),
                                   PRIMARY KEY(object, mirror)) WITHOUT ROWID;
            -- Objects a mirror lacks whose spool copy was given up (spool full): only
            -- an operator's mirror-sync can bring them over.
            CREATE TABLE abandoned(object INTEGER NOT NULL, mirror INTEGER NOT NULL,
                                   PRIMARY KEY(object, mirror)) WITHOUT ROWID;
            CREATE TABLE snapshots(id TEXT PRIMARY KEY, started INTEGER NOT NULL, finished INTEGER NOT NULL,
                                   root BLOB NOT NULL, record INTEGER NOT NULL, catalog INTEGER NOT NULL,
                                   summary TEXT NOT NULL);
            -- Directories a mirror is known to have ('' is the client's own): a stock WebDAV
            -- server needs each made (MKCOL) before the first PUT into it, once.
            CREATE TABLE directories(mirror INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY(mirror, path)) WITHOUT ROWID;
            """
        case .caches: """
            CREATE TABLE chunks(id BLOB PRIMARY KEY, pack INTEGER NOT NULL REFERENCES objects(id),
                                kind INTEGER NOT NULL, plain_length INTEGER NOT NULL) WITHOUT ROWID;
            CREATE INDEX chunks_by_pack ON chunks(pack);
            CREATE TABLE files(path BLOB PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL,
                               size INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL,
                               regions BLOB NOT NULL) WITHOUT ROWID;
            """
        }
    }
}

/// A step from one version of a part to the next.
struct IndexMigration {
    let part: IndexPart
    let from: Int
    /// What it does, for the log and the tests.
    let name: String
    let sql: String

    /// Every migration fbk knows, oldest first. Version 0 of both parts is
    /// the index of fbk 0.4 and before: the same tables under one
    /// `schema_version` of 1; it becomes version 1 of each part.
    static let all: [IndexMigration] = [
        IndexMigration(part: .ledger, from: 0, name: "ledger 1: versioned apart from the caches (tables unchanged)", sql: ""),
        IndexMigration(part: .caches, from: 0, name: "caches 1: versioned apart from the ledger (tables unchanged)", sql: ""),
        // Objects recorded before are taken as sealed to the recipients of
        // the first run after the migration (`Index.adoptUnknownRecipients`).
        IndexMigration(part: .ledger, from: 1, name: "ledger 2: the certificates each object is sealed to, which packs are renewed, the directories each mirror has",
                       sql: """
                           ALTER TABLE objects ADD COLUMN sealed_to TEXT;
                           ALTER TABLE objects ADD COLUMN content_bytes INTEGER;
                           ALTER TABLE objects ADD COLUMN renew INTEGER NOT NULL DEFAULT 0;
                           CREATE TABLE directories(mirror INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY(mirror, path)) WITHOUT ROWID;
                           """),
    ]
}

/// The `meta` table and the generation every fbk since the first reads:
/// an index is usable by an fbk only if this is 1, whatever the parts say.
enum IndexMeta {
    static let table = "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    static let generationKey = "schema_version"
    static let generation = 1
}

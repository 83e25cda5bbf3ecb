// A thin owner of SQLite handles: one connection, prepared statements
// cached by their SQL literal, errors carrying SQLite's codes and message.

internal import CSQLite
import FoundationEssentials
import Glibc
import Platform

/// An error from SQLite. The corresponding C codes are `SQLITE_*`.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The primary result code (`SQLITE_BUSY`, `SQLITE_CORRUPT`, …).
    public let code: Int32
    /// The extended result code.
    public let extendedCode: Int32
    public let message: String
    public let sql: String?

    public var description: String {
        "SQLite error \(code) (\(extendedCode)): \(message)" + (sql.map { " in \($0)" } ?? "")
    }

    /// The file or its directory cannot be written (permissions, immutable attribute, read-only mount).
    public var isReadOnly: Bool { code == SQLITE_READONLY || code == SQLITE_PERM || code == SQLITE_CANTOPEN || code == SQLITE_AUTH }

    /// The database file is damaged or not a database.
    public var isCorruption: Bool { code == SQLITE_CORRUPT || code == SQLITE_NOTADB }

    /// The disk is full or failing: the database is not damaged, but nothing can be written.
    public var isDiskTrouble: Bool { code == SQLITE_FULL || code == SQLITE_IOERR }
}

/// One SQLite connection. Not thread-safe: use from one thread.
package final class SQLiteDatabase {
    private(set) var handle: OpaquePointer?
    /// Prepared statements by the address of their SQL literal: a lookup
    /// hashes one word, not the text (it runs once per file in a scan).
    /// `inUse` while a `Statement` holds it: the same query asked for again
    /// inside its own loop gets a fresh statement, so the outer cursor is
    /// never reset under it.
    private var statements: [UnsafeRawPointer: (handle: OpaquePointer, inUse: Bool)] = [:]
    package let path: String

    package init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        self.path = path
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil)
        handle = db
        guard rc == SQLITE_OK else {
            let e = SQLiteError(code: rc & 0xFF, extendedCode: rc,
                                message: db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open", sql: nil)
            sqlite3_close_v2(db)
            handle = nil
            throw e
        }
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 5000)
    }

    /// SQLite opened the file read-only (it could not open it for writing).
    /// The corresponding C function is `sqlite3_db_readonly`.
    package var isReadOnly: Bool { sqlite3_db_readonly(handle, "main") == 1 }

    deinit {
        for (_, s) in statements { sqlite3_finalize(s.handle) }
        sqlite3_close_v2(handle)
    }

    func error(_ rc: Int32, _ sql: String?) -> SQLiteError {
        SQLiteError(code: rc & 0xFF, extendedCode: rc, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs one or more statements without results.
    package func execute(_ sql: String) throws(SQLiteError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, sql) }
    }

    /// A prepared statement with no bindings, cached by its SQL literal;
    /// it goes back to the cache (reset) when the `Statement` ends.
    package func statement(_ sql: StaticString) throws(SQLiteError) -> Statement {
        let key = UnsafeRawPointer(sql.utf8Start)
        if let s = statements[key], !s.inUse {
            sqlite3_clear_bindings(s.handle)
            statements[key]?.inUse = true
            return Statement(db: self, handle: s.handle, sql: sql, cached: true)
        }
        let cache = statements[key] == nil
        var s: OpaquePointer?
        let rc = sql.withUTF8Buffer { text in
            text.withMemoryRebound(to: CChar.self) {
                sqlite3_prepare_v3(handle, $0.baseAddress, Int32($0.count), cache ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0, &s, nil)
            }
        }
        guard rc == SQLITE_OK, let s else { throw error(rc, "\(sql)") }
        if cache { statements[key] = (s, true) }
        return Statement(db: self, handle: s, sql: sql, cached: cache)
    }

    /// A statement's end: a cached one is reset for the next use, another finalized.
    fileprivate func giveBack(_ handle: OpaquePointer, sql: StaticString, cached: Bool) {
        sqlite3_reset(handle)
        if cached {
            statements[UnsafeRawPointer(sql.utf8Start)]?.inUse = false
        } else {
            sqlite3_finalize(handle)
        }
    }

    /// Runs `body` in one transaction; rolls back if it throws.
    package func transaction<R>(_ body: () throws -> R) throws -> R {
        try execute("BEGIN IMMEDIATE")
        do {
            let r = try body()
            try execute("COMMIT")
            return r
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    package var changes: Int { Int(sqlite3_changes(handle)) }

    /// The rowid of the last row inserted. The corresponding C function is `sqlite3_last_insert_rowid`.
    package var lastInsertedRow: Int { Int(sqlite3_last_insert_rowid(handle)) }
}

/// A prepared statement in use. Bind with 1-based indices. It owns its
/// turn with the statement: when it ends, the statement is reset (and
/// returned to the cache, or finalized if it was made for a nested use).
package struct Statement: ~Copyable {
    let db: SQLiteDatabase
    let handle: OpaquePointer
    let sql: StaticString
    let cached: Bool

    deinit { db.giveBack(handle, sql: sql, cached: cached) }

    package func bind(_ index: Int32, _ value: Int) { sqlite3_bind_int64(handle, index, Int64(value)) }
    package func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }
    package func bind(_ index: Int32, _ value: String) { sqlite3_bind_text(handle, index, value, -1, CSQLite_TRANSIENT()) }
    package func bind(_ index: Int32, _ value: [UInt8]) {
        value.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32($0.count), CSQLite_TRANSIENT()) }
    }
    package func bindNull(_ index: Int32) { sqlite3_bind_null(handle, index) }

    /// Steps once: true if a row is available.
    @discardableResult
    package func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw db.error(rc, "\(sql)")
    }

    package func run() throws(SQLiteError) {
        while try step() {}
    }

    package func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    package func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    package func text(_ column: Int32) -> String {
        guard let p = sqlite3_column_text(handle, column) else { return "" }
        return String(cString: p)
    }
    /// How a blob column orders against `bytes`, as SQLite orders blobs:
    /// negative if before, 0 if equal, positive if after.
    package func compareBlob(_ column: Int32, _ bytes: [UInt8]) -> Int {
        let n = Int(sqlite3_column_bytes(handle, column))
        let p = sqlite3_column_blob(handle, column)
        return bytes.withUnsafeBytes { b in
            let common = min(n, b.count)
            if common > 0, let p {
                let c = memcmp(p, b.baseAddress!, common)
                if c != 0 { return Int(c) }
            }
            return n - b.count
        }
    }

    package func blob(_ column: Int32) -> [UInt8] {
        let n = Int(sqlite3_column_bytes(handle, column))
        guard n > 0, let p = sqlite3_column_blob(handle, column) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: p, count: n))
    }
}

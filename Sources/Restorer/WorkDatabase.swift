// The operator side's scratch SQLite file, in a repository's private work
// directory: where each chunk is (from the records' pack listings) and,
// while a restore runs, its plan (every entry to create and every place a
// chunk is written). Memory stays bounded by SQLite's page cache whatever
// the number of files and chunks; SQLite sorts the plan by pack on disk.

import Seal
import SQLite
import Platform

final class WorkDatabase {
    private let db: SQLiteDatabase
    /// Where each chunk is: what the listings claim, what pack tables hold.
    let locator: ChunkLocator
    /// What a restore creates, and where each chunk goes.
    let plan: RestorePlan

    init(directory: String) throws(StoreError) {
        do {
            db = try SQLiteDatabase(path: directory + "/work.sqlite")
            // A scratch file: removed with the work directory, never needed after a crash.
            try db.execute("""
                PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;
                PRAGMA temp_store = FILE;
                CREATE TABLE pack (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,
                                   listed INTEGER NOT NULL DEFAULT 0, needed INTEGER NOT NULL DEFAULT 1,
                                   scanned INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE chunk (id BLOB NOT NULL, pack INTEGER NOT NULL, length INTEGER NOT NULL,
                                    verified INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (id, pack)) WITHOUT ROWID;
                CREATE TABLE retry (chunk BLOB NOT NULL, length INTEGER NOT NULL, file INTEGER NOT NULL,
                                    path BLOB NOT NULL, offset INTEGER NOT NULL, error TEXT NOT NULL);
                CREATE TABLE node (id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, depth INTEGER NOT NULL,
                                   path BLOB NOT NULL, size INTEGER NOT NULL, entry BLOB);
                CREATE TABLE use (pack INTEGER NOT NULL, chunk BLOB NOT NULL, length INTEGER NOT NULL,
                                  file INTEGER NOT NULL, offset INTEGER NOT NULL);
                """)
        } catch {
            throw Self.failure(error)
        }
        locator = ChunkLocator(db: db)
        plan = RestorePlan(db: db)
    }

    static func failure(_ error: SQLiteError) -> StoreError {
        StoreError(.io, "the restore's work database failed (\(error)); check the free space of the temporary directory (TMPDIR)")
    }

    /// Runs `body` in one transaction (many inserts at the cost of one).
    func batch<R>(_ body: () throws -> R) throws -> R {
        do { return try db.transaction(body) } catch let e as SQLiteError { throw Self.failure(e) }
    }
}

/// A part of the work database: it shares the connection and its errors.
class WorkDatabasePart {
    let db: SQLiteDatabase

    init(db: SQLiteDatabase) { self.db = db }

    func run<R>(_ body: () throws(SQLiteError) -> R) throws(StoreError) -> R {
        do { return try body() } catch { throw WorkDatabase.failure(error) }
    }
}

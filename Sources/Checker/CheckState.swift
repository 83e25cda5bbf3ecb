// What the weekly check has verified, kept between runs: each object's
// SHA-256 as first seen, with its size and file time, and when it was last
// hashed. Every run hashes what is new or changed and a rolling share of
// the rest (oldest verification first), so a tampered object is caught at
// the next run and bit rot within 1/share runs, at a bounded cost a run.
//
// The file is text, one object a line (tab-separated):
//   last-verified (Unix seconds)  size  mtime (ns)  sha256  path
// with a first line `fbk-check-state 1`. Paths are relative to the storage
// root and hold no tab or newline (fbk names never do; others are not
// remembered, and are hashed every run).

import FoundationEssentials
import Glibc
import Platform
import Seal

public final class CheckState {
    struct Entry {
        var verified: Int
        var size: Int
        var mtime: Int64
        var sha256: String
    }

    let path: String?
    private(set) var entries: [String: Entry] = [:]
    private var seen = Set<String>()
    /// The share of the stored bytes re-hashed each run, oldest first.
    public let reverifyShare: Double

    static let header = "fbk-check-state 1"

    /// Loads the state file (a missing one is an empty state).
    /// - Throws: `StoreError.config` for a file that is not a check state.
    public init(path: String?, reverifyShare: Double) throws(StoreError) {
        self.path = path
        self.reverifyShare = reverifyShare
        guard let path, FileManager.default.fileExists(atPath: path) else { return }
        let bytes = try readBounded(path, limit: 1 << 30, what: "check state")
        var lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        guard lines.first.map(String.init) == Self.header else {
            throw StoreError(.config, "\(path) is not an fbk check state file; move it away and run the check again")
        }
        lines.removeFirst()
        for line in lines {
            let f = line.split(separator: "\t", maxSplits: 4, omittingEmptySubsequences: false)
            guard f.count == 5, let v = Int(f[0]), let size = Int(f[1]), let mtime = Int64(f[2]), f[3].count == 64 else { continue }
            entries[String(f[4])] = Entry(verified: v, size: size, mtime: mtime, sha256: String(f[3]))
        }
    }

    /// What to hash this run among `files` (path relative to the root →
    /// size and mtime): every object not yet verified or whose size or
    /// time changed, and the objects verified longest ago until
    /// `reverifyShare` of the bytes.
    func toHash(_ files: [(path: String, size: Int, mtime: Int64)]) -> Set<String> {
        guard path != nil else { return [] }
        var out = Set<String>()
        var old: [(path: String, size: Int, verified: Int)] = []
        var total = 0
        for f in files {
            total += f.size
            seen.insert(f.path)
            if let e = entries[f.path], e.size == f.size, e.mtime == f.mtime {
                old.append((f.path, f.size, e.verified))
            } else {
                out.insert(f.path)
            }
        }
        var budget = Double(total) * reverifyShare
        for o in old.sorted(by: { ($0.verified, $0.path) < ($1.verified, $1.path) }) where budget > 0 {
            out.insert(o.path)
            budget -= Double(o.size)
        }
        return out
    }

    /// Records a hash; returns the hash first recorded when it differs
    /// (a write-once object that changed).
    func record(_ path: String, size: Int, mtime: Int64, sha256: String, now: Date) -> String? {
        guard self.path != nil, !path.contains("\t"), !path.contains("\n") else { return nil }
        let first = entries[path]?.sha256
        entries[path] = Entry(verified: Int(now.timeIntervalSince1970), size: size, mtime: mtime, sha256: first ?? sha256)
        return first.flatMap { $0 == sha256 ? nil : $0 }
    }

    /// The first recorded hash of an object, if any.
    func firstHash(_ path: String) -> String? { entries[path]?.sha256 }

    /// Writes the state (objects no longer present are forgotten), atomically.
    public func save() throws(StoreError) {
        guard let path else { return }
        var text = Self.header + "\n"
        for (p, e) in entries.sorted(by: { $0.key < $1.key }) where seen.contains(p) {
            text += "\(e.verified)\t\(e.size)\t\(e.mtime)\t\(e.sha256)\t\(p)\n"
        }
        try DurableFile.replace(path, with: Array(text.utf8))
    }
}

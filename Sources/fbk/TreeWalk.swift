// Reading a snapshot's trees in the commands that walk them (ls, diff,
// find), with the protections every reader has.

import FoundationEssentials
import Glibc
import Format
import Platform
import Restorer
import Seal

/// Walks a snapshot's trees with the protections every reader has: a tree
/// on its own ancestor path, or more entries than the signed record
/// states, is forged and stops the walk (FORMAT.md 6.1, 7).
struct TreeWalk {
    let repo: Repository
    let snapshot: SnapshotRecord
    private(set) var walked = 0

    init(_ repo: Repository, _ snapshot: SnapshotRecord) { (self.repo, self.snapshot) = (repo, snapshot) }

    /// The entries of the tree at `path`, counted against the record's
    /// budget. `ancestors`: the trees above it, which it may not be.
    mutating func entries(_ tree: ChunkID, path: String, ancestors: Set<ChunkID>) throws -> [TreeEntry] {
        guard !ancestors.contains(tree) else {
            throw StoreError(.integrity, "\(path) in snapshot \(snapshot.id) is its own ancestor (tree \(tree.shortDescription)): its trees are forged")
        }
        let entries = try repo.tree(tree)
        try count(entries)
        return entries
    }

    /// Counts entries read some other way (a lookup's tree) against the budget.
    mutating func count(_ entries: [TreeEntry]) throws {
        walked += entries.count
        guard walked <= snapshot.entryBudget else {
            throw StoreError(.integrity, "snapshot \(snapshot.id) holds more entries than its signed record states (\(snapshot.entryBudget) with the leading directories): its trees are forged or damaged")
        }
    }

    /// The tree of `path` in the snapshot (the root for ""), or why there is none.
    func start(_ path: String) throws -> ChunkID {
        if path.split(separator: "/").isEmpty {
            guard let root = Digest(hex: snapshot.root) else { throw StoreError(.integrity, "snapshot \(snapshot.id) has a malformed root") }
            return root
        }
        guard let e = try repo.lookup(snapshot, path: path).entry, e.type == .directory, let sub = e.subtree else {
            throw StoreError(.config, "\(path.terminalSafe) is not a directory in snapshot \(snapshot.id)")
        }
        return sub
    }
}

func joined(_ prefix: String, _ name: [UInt8]) -> String {
    let n = String(decoding: name, as: UTF8.self)
    return prefix.isEmpty ? n : prefix + "/" + n
}


import ArgumentParser
import FoundationEssentials
import Glibc
import Platform
import Format
import Restorer
import Seal

/// `fbk diff`: what changed between two snapshots, from their trees alone.
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "List files added, removed and changed between two snapshots (needs the private key; reads trees only).",
        discussion: """
            Lines: `+` added, `-` removed, `M` content changed (size or chunks), \
            `U` metadata only (mode, owner, times, xattrs), `T` type changed. \
            A directory whose tree is the same in both is skipped whole, so a \
            diff of two daily snapshots reads only what changed. File contents \
            are never read.

            Example:
              fbk diff --from /srv/fbk --client manning --signing-key bundles/manning/signing.pub --key private.pem 20261205T030000Z latest etc
            """
    )

    @OptionGroup var repository: RepositoryOptions
    @Flag(name: .long, help: "Print JSON.")
    var json = false
    @Argument(help: "The earlier snapshot (ID, prefix, or latest).")
    var first: String
    @Argument(help: "The later snapshot.")
    var second: String
    @Argument(help: "Only below this directory (relative to the snapshot root).")
    var path: String = ""

    struct Change: Encodable {
        var change: String
        var path: String
        var type: String
        var sizeBefore: UInt64?
        var sizeAfter: UInt64?
        enum CodingKeys: String, CodingKey {
            case change, path, type
            case sizeBefore = "size_before"
            case sizeAfter = "size_after"
        }
    }

    func run() throws {
        do {
            let repo = try repository.openRepository()
            let a = try repo.snapshot(first), b = try repo.snapshot(second)
            var walkA = TreeWalk(repo, a), walkB = TreeWalk(repo, b)
            let prefix = path.split(separator: "/").joined(separator: "/")
            var changes: [Change] = []
            var counts = [String: Int]()
            var grew: Int64 = 0
            let emit = { (c: Change) in
                counts[c.change, default: 0] += 1
                grew += Int64(c.sizeAfter ?? 0) - Int64(c.sizeBefore ?? 0)
                if json { changes.append(c) } else {
                    let sizes = c.change == "M" ? " (\(c.sizeBefore ?? 0) -> \(c.sizeAfter ?? 0) bytes)" : ""
                    print("\(c.change)  \(c.path.terminalSafe)\(c.type == "directory" ? "/" : "")\(sizes)")
                }
            }
            let treeA = try walkA.start(prefix), treeB = try walkB.start(prefix)
            try onLargeStack {
                try compare(treeA, treeB, prefix: prefix, &walkA, &walkB, aboveA: [], aboveB: [], emit: emit)
            }
            if json {
                printJSON(changes)
            } else {
                print("\(counts["+", default: 0]) added, \(counts["-", default: 0]) removed, \(counts["M", default: 0]) changed, "
                      + "\(counts["U", default: 0]) metadata only, \(counts["T", default: 0]) changed type; \(grew >= 0 ? "+" : "")\(grew) bytes")
            }
        } catch {
            throw fail(error)
        }
    }

    /// - Parameters: aboveA, aboveB: the trees above `a` and `b`.
    private func compare(_ a: ChunkID, _ b: ChunkID, prefix: String, _ walkA: inout TreeWalk, _ walkB: inout TreeWalk,
                         aboveA: Set<ChunkID>, aboveB: Set<ChunkID>, emit: (Change) -> Void) throws {
        guard a != b else { return }   // the same tree: nothing below changed
        let left = try walkA.entries(a, path: prefix, ancestors: aboveA)
        let right = try walkB.entries(b, path: prefix, ancestors: aboveB)
        let ancestorsA = aboveA.union([a]), ancestorsB = aboveB.union([b])
        var i = 0, j = 0
        while i < left.count || j < right.count {
            let l = i < left.count ? left[i] : nil, r = j < right.count ? right[j] : nil
            if let l, r == nil || l.name.lexicographicallyPrecedes(r!.name) {
                try whole(l, prefix: prefix, "-", &walkA, ancestors: ancestorsA, emit: emit)
                i += 1
            } else if let r, l == nil || r.name.lexicographicallyPrecedes(l!.name) {
                try whole(r, prefix: prefix, "+", &walkB, ancestors: ancestorsB, emit: emit)
                j += 1
            } else if let l, let r {
                let p = joined(prefix, l.name)
                if l.type != r.type {
                    emit(Change(change: "T", path: p, type: "\(r.type)", sizeBefore: l.size, sizeAfter: r.size))
                } else if l.type == .directory {
                    if !sameMetadata(l, r) { emit(Change(change: "U", path: p, type: "directory")) }
                    if let sa = l.subtree, let sb = r.subtree {
                        try compare(sa, sb, prefix: p, &walkA, &walkB, aboveA: ancestorsA, aboveB: ancestorsB, emit: emit)
                    }
                } else if l.size != r.size || l.regions != r.regions || l.target != r.target || l.rdev != r.rdev {
                    emit(Change(change: "M", path: p, type: "\(r.type)", sizeBefore: l.size, sizeAfter: r.size))
                } else if !sameMetadata(l, r) {
                    emit(Change(change: "U", path: p, type: "\(r.type)", sizeBefore: l.size, sizeAfter: r.size))
                }
                i += 1
                j += 1
            }
        }
    }

    private func sameMetadata(_ a: TreeEntry, _ b: TreeEntry) -> Bool {
        a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.user == b.user && a.group == b.group
            && a.mtimeNanoseconds == b.mtimeNanoseconds && a.xattrs.map(\.name) == b.xattrs.map(\.name)
            && a.xattrs.map(\.value) == b.xattrs.map(\.value)
    }

    /// An entry only one side has, and everything below it.
    private func whole(_ e: TreeEntry, prefix: String, _ change: String, _ walk: inout TreeWalk, ancestors: Set<ChunkID>,
                       emit: (Change) -> Void) throws {
        let p = joined(prefix, e.name)
        emit(Change(change: change, path: p, type: "\(e.type)", sizeBefore: change == "-" ? e.size : nil, sizeAfter: change == "+" ? e.size : nil))
        guard e.type == .directory, let sub = e.subtree else { return }
        for child in try walk.entries(sub, path: p, ancestors: ancestors) {
            try whole(child, prefix: p, change, &walk, ancestors: ancestors.union([sub]), emit: emit)
        }
    }
}

/// `fbk find`: which snapshots hold a path, from their trees alone.
struct FindCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "find",
        abstract: "Find files by name or path pattern across snapshots (needs the private key; reads trees only).",
        discussion: """
            PATTERN is an fnmatch pattern: without a `/` it is matched against \
            names (`*.conf`), with one against paths relative to the snapshot \
            root (`etc/nginx/*`). Every snapshot is searched, newest first, or \
            those given with --snapshot. A directory tree already searched in \
            an earlier snapshot at the same place is not read again.

            Example:
              fbk find --from /srv/fbk --client manning --signing-key bundles/manning/signing.pub --key private.pem 'nginx.conf'
            """
    )

    @OptionGroup var repository: RepositoryOptions
    @Flag(name: .long, help: "Print JSON.")
    var json = false
    @Option(name: .long, help: "Only this snapshot (ID, prefix, or latest); repeat.")
    var snapshot: [String] = []
    @Argument(help: "The pattern.")
    var pattern: String

    struct Match: Encodable {
        var snapshot: String, path: String, type: String, size: UInt64, mtime: String
    }

    func run() throws {
        do {
            let repo = try repository.openRepository()
            let snapshots = snapshot.isEmpty ? repo.snapshots.reversed() : try snapshot.map { try repo.snapshot($0) }
            let byPath = pattern.contains("/")
            let pattern = byPath ? pattern.split(separator: "/").joined(separator: "/") : pattern
            // (tree, its path) → the matches below it, relative: a tree met again at the same place matches the same.
            var known: [String: [(path: String, entry: TreeEntry)]] = [:]
            var matches: [Match] = []
            var count = 0
            for s in snapshots {
                var walk = TreeWalk(repo, s)
                let root = try walk.start("")
                var found: [(path: String, entry: TreeEntry)] = []
                try onLargeStack { found = try search(root, prefix: "", &walk, ancestors: [], byPath: byPath, pattern: pattern, known: &known) }
                for (p, e) in found {
                    count += 1
                    let m = Match(snapshot: s.id.text, path: p, type: "\(e.type)", size: e.size,
                                  mtime: Timestamp.rfc3339(Date(timeIntervalSince1970: Double(e.mtimeNanoseconds) / 1e9)))
                    if json { matches.append(m) } else { print("\(m.snapshot)  \(String(m.size).leftPad(12))  \(m.mtime)  \(m.path.terminalSafe)") }
                }
            }
            if json { printJSON(matches) } else if count == 0 { writeStandardError("fbk: no match in \(snapshots.count) snapshots\n") }
        } catch {
            throw fail(error)
        }
    }

    private func search(_ tree: ChunkID, prefix: String, _ walk: inout TreeWalk, ancestors: Set<ChunkID>, byPath: Bool, pattern: String,
                        known: inout [String: [(path: String, entry: TreeEntry)]]) throws -> [(path: String, entry: TreeEntry)] {
        let key = tree.hex + "\u{0}" + prefix
        if let done = known[key] { return done }
        var out: [(path: String, entry: TreeEntry)] = []
        for e in try walk.entries(tree, path: prefix, ancestors: ancestors) {
            let p = joined(prefix, e.name)
            let subject = byPath ? p : String(decoding: e.name, as: UTF8.self)
            if fnmatch(pattern, subject, 0) == 0 { out.append((p, e)) }
            if e.type == .directory, let sub = e.subtree {
                out += try search(sub, prefix: p, &walk, ancestors: ancestors.union([tree]), byPath: byPath, pattern: pattern, known: &known)
            }
        }
        known[key] = out
        return out
    }
}

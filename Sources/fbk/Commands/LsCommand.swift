import ArgumentParser
import FoundationEssentials
import Glibc
import Platform
import Format
import Restorer
import Seal

/// `fbk ls`: a directory of a snapshot, like `ls -l`.
struct LsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List a directory of a snapshot like ls -l (needs the private key).",
        discussion: """
            SNAPSHOT is an ID, a unique prefix of one, or `latest`. PATH is \
            relative to the snapshot root (e.g. etc/nginx).

            Example:
              fbk ls --from /srv/fbk --client manning --signing-key bundles/manning/signing.pub --key private.pem latest etc/nginx
            """
    )

    @OptionGroup var repository: RepositoryOptions
    @Flag(name: [.customShort("R"), .long], help: "List subdirectories too.")
    var recursive = false
    @Flag(name: .long, help: "Print JSON.")
    var json = false
    @Argument(help: "Snapshot ID, prefix, or latest.")
    var snapshot: String
    @Argument(help: "Directory or file in the snapshot.")
    var path: String = ""

    struct Row: Encodable {
        var path: String, type: String, mode: String, user: String, group: String, size: UInt64, mtime: String
        var target: String?
    }

    func run() throws {
        do {
            let repo = try repository.openRepository()
            let s = try repo.snapshot(snapshot)
            let (entry, tree) = try repo.lookup(s, path: path)
            let prefix = path.split(separator: "/").joined(separator: "/")
            var output = RowPrinter(json: json)
            if let tree {
                // Rows are printed as the trees are read: memory stays flat
                // however many entries a recursive listing has.
                var walk = TreeWalk(repo, s)
                try walk.count(tree)
                let ancestors: Set<ChunkID> = entry?.subtree.map { [$0] } ?? Digest(hex: s.root).map { [$0] } ?? []
                try onLargeStack {
                    try list(tree, prefix: prefix, &walk, ancestors: ancestors, into: &output)
                }
            } else if let entry {
                output.print(row(entry, path: prefix))
            }
            output.finish()
        } catch {
            throw fail(error)
        }
    }

    /// Prints rows one at a time, as text like `ls -l` or as one JSON array.
    struct RowPrinter {
        let json: Bool
        private var count = 0
        private let encoder: JSONEncoder = {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return e
        }()

        init(json: Bool) { self.json = json }

        mutating func print(_ r: Row) {
            if json {
                Swift.print(count == 0 ? "[" : ",", String(decoding: try! encoder.encode(r), as: UTF8.self), separator: "")
            } else {
                Swift.print("\(r.mode) \(r.user.terminalSafe.rightPad(8)) \(r.group.terminalSafe.rightPad(8)) \(String(r.size).leftPad(12)) \(r.mtime) \(r.path.terminalSafe)\(r.target.map { " -> \($0.terminalSafe)" } ?? "")")
            }
            count += 1
        }

        func finish() { if json { Swift.print(count == 0 ? "[]" : "]") } }
    }

    /// Walks the trees depth first (TreeWalk: a tree on its own ancestor
    /// path, or more entries than the record states, stops the walk).
    /// `ancestors`: the trees down to this one.
    private func list(_ tree: [TreeEntry], prefix: String, _ walk: inout TreeWalk, ancestors: Set<ChunkID>,
                      into output: inout RowPrinter) throws {
        for e in tree {
            let p = joined(prefix, e.name)
            output.print(row(e, path: p))
            if recursive, e.type == .directory, let sub = e.subtree {
                try list(try walk.entries(sub, path: p, ancestors: ancestors), prefix: p, &walk, ancestors: ancestors.union([sub]), into: &output)
            }
        }
    }

    private func row(_ e: TreeEntry, path: String) -> Row {
        let typeChar: Character = switch e.type {
        case .directory: "d"
        case .symlink: "l"
        case .hardlink: "h"
        case .fifo: "p"
        case .socket: "s"
        case .characterDevice: "c"
        case .blockDevice: "b"
        case .file: "-"
        }
        var mode = String(typeChar)
        let bits: [(UInt32, Character)] = [(0o400, "r"), (0o200, "w"), (0o100, "x"), (0o40, "r"), (0o20, "w"), (0o10, "x"), (0o4, "r"), (0o2, "w"), (0o1, "x")]
        for (bit, c) in bits { mode.append(e.mode & bit != 0 ? c : "-") }
        // setuid, setgid and sticky as ls -l shows them: s/S, s/S, t/T.
        func mark(_ index: Int, _ flag: UInt32, _ execute: UInt32, _ set: Character, _ unset: Character) {
            guard e.mode & flag != 0 else { return }
            let i = mode.index(mode.startIndex, offsetBy: index)
            mode.replaceSubrange(i...i, with: String(e.mode & execute != 0 ? set : unset))
        }
        mark(3, 0o4000, 0o100, "s", "S")
        mark(6, 0o2000, 0o10, "s", "S")
        mark(9, 0o1000, 0o1, "t", "T")
        let date = Date(timeIntervalSince1970: Double(e.mtimeNanoseconds) / 1e9)
        let user = e.user.isEmpty ? String(e.uid) : String(decoding: e.user, as: UTF8.self)
        let group = e.group.isEmpty ? String(e.gid) : String(decoding: e.group, as: UTF8.self)
        return Row(path: path, type: "\(e.type)", mode: mode, user: user, group: group, size: e.size, mtime: Timestamp.rfc3339(date),
                   target: (e.type == .symlink || e.type == .hardlink) ? String(decoding: e.target, as: UTF8.self) : nil)
    }
}

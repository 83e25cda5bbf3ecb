import ArgumentParser
import Foundation
import Store

/// `fbk ls`: a directory of a snapshot, like `ls -l`.
struct LsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List a directory of a snapshot like ls -l (needs the private key).",
        discussion: """
            SNAPSHOT is an ID, a unique prefix of one, or `latest`. PATH is \
            relative to the snapshot root (e.g. etc/nginx).

            Example:
              fbk ls --from /srv/fbk --client manning --key private.pem latest etc/nginx
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
            var rows: [Row] = []
            let prefix = path.split(separator: "/").joined(separator: "/")
            if let tree {
                rows = try onLargeStack {
                    var collected: [Row] = []
                    try list(repo, tree, prefix: prefix, into: &collected)
                    return collected
                }
            } else if let entry {
                rows.append(row(entry, path: prefix))
            }
            if json { printJSON(rows) } else {
                for r in rows {
                    print("\(r.mode) \(r.user.padding(toLength: 8, withPad: " ", startingAt: 0)) \(r.group.padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(r.size).leftPad(12)) \(r.mtime) \(r.path)\(r.target.map { " -> \($0)" } ?? "")")
                }
            }
        } catch {
            throw fail(error)
        }
    }

    private func list(_ repo: Repository, _ tree: [TreeEntry], prefix: String, into rows: inout [Row]) throws {
        for e in tree {
            let p = prefix.isEmpty ? String(decoding: e.name, as: UTF8.self) : prefix + "/" + String(decoding: e.name, as: UTF8.self)
            rows.append(row(e, path: p))
            if recursive, e.type == .directory, let sub = e.subtree {
                try list(repo, try repo.tree(sub), prefix: p, into: &rows)
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
        let date = Date(timeIntervalSince1970: Double(e.mtimeNanoseconds) / 1e9)
        let user = e.user.isEmpty ? String(e.uid) : String(decoding: e.user, as: UTF8.self)
        let group = e.group.isEmpty ? String(e.gid) : String(decoding: e.group, as: UTF8.self)
        return Row(path: path, type: "\(e.type)", mode: mode, user: user, group: group, size: e.size, mtime: Layout.rfc3339(date),
                   target: (e.type == .symlink || e.type == .hardlink) ? String(decoding: e.target, as: UTF8.self) : nil)
    }
}

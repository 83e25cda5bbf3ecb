import Foundation
import Backend
import Format
import Platform
import Testing
import TestSupport

/// What `fbk prune` may do to storage (RemovableStorage): the same cases on
/// a storage root and through WebDAV on real nginx with
/// deploy/nginx/fbk-prune.conf.
@Suite struct RemovableStorageTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case directory, webdav
        var testDescription: String { rawValue }
    }

    /// A client directory holding `packs/ab/…`, its trash directory, and how to look at the disk.
    struct Made {
        let storage: any RemovableStorage
        let area: any RemovableStorage
        let root: String
        let fixtures: [AnyObject]
    }

    func make(_ kind: Kind) throws -> Made {
        switch kind {
        case .directory:
            let dir = try TemporaryDirectory()
            let root = dir.file("root")
            try FileManager.default.createDirectory(atPath: root + "/c1", withIntermediateDirectories: true)
            return Made(storage: try DirectoryBackend(storageRoot: root, client: "c1"),
                        area: try DirectoryBackend(url: "file://" + root + "/.fbk-trash/c1/"), root: root, fixtures: [dir])
        case .webdav:
            let nginx = try NginxMirror(users: ["c1": "client-pw"])
            try FileManager.default.createDirectory(atPath: nginx.storageRoot + "/c1", withIntermediateDirectories: true)
            let dir = try TemporaryDirectory()
            let password = try dir.write("operator-pw", Array("operator-pw".utf8))
            return Made(storage: try WebDAVBackend(storageRoot: nginx.pruneURL, client: "c1", user: "operator", passwordFile: password),
                        area: try WebDAVBackend(directory: nginx.pruneURL + ".fbk-trash/c1/", user: "operator", passwordFile: password),
                        root: nginx.storageRoot, fixtures: [nginx, dir])
        }
    }

    func plant(_ m: Made, _ path: String, _ bytes: [UInt8], time: Int = 1_700_000_000) throws {
        let file = m.root + "/c1/" + path
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        var times = [timespec(tv_sec: time, tv_nsec: 0), timespec(tv_sec: time, tv_nsec: 0)]
        utimensat(AT_FDCWD, file, &times, 0)
    }

    static let pack = "packs/ab/ab" + String(repeating: "0", count: 62) + ".pack"

    @Test(arguments: Kind.allCases) func aMoveKeepsBytesAndReceiptTimeAndNeverReplaces(_ kind: Kind) throws {
        let m = try make(kind)
        try plant(m, Self.pack, [1, 2, 3])
        try m.storage.move(Self.pack, to: m.area, as: "20260101T000000Z/" + Self.pack)
        #expect(!FileManager.default.fileExists(atPath: m.root + "/c1/" + Self.pack))
        let moved = try m.area.stat("20260101T000000Z/" + Self.pack)
        #expect(moved.size == 3)
        #expect(moved.received == Date(timeIntervalSince1970: 1_700_000_000), "the receipt time stays the object's")
        #expect(try m.area.read("20260101T000000Z/" + Self.pack, limit: 10, what: "moved") == [1, 2, 3])

        // Back where it was; a second object of that name is never replaced.
        try plant(m, Self.pack, [9, 9])
        #expect(throws: BackendError.self) { try m.area.move("20260101T000000Z/" + Self.pack, to: m.storage, as: Self.pack) }
        #expect(try m.storage.read(Self.pack, limit: 10, what: "kept") == [9, 9])
        do {
            try m.area.move("20260101T000000Z/" + Self.pack, to: m.storage, as: Self.pack)
        } catch {
            #expect(error.kind == .alreadyExists, "\(error)")
        }
    }

    @Test(arguments: Kind.allCases) func missingObjectsAndEscapesAreRefused(_ kind: Kind) throws {
        let m = try make(kind)
        do {
            try m.storage.move(Self.pack, to: m.area, as: "x/" + Self.pack)
            Issue.record("moved a missing object")
        } catch {
            #expect(error.kind == .notFound, "\(error)")
        }
        try plant(m, Self.pack, [1])
        #expect(throws: BackendError.self) { try m.storage.move(Self.pack, to: m.area, as: "../../c2/" + Self.pack) }
        #expect(throws: BackendError.self) { try m.storage.delete("../c2") }
        #expect(FileManager.default.fileExists(atPath: m.root + "/c1/" + Self.pack))
    }

    @Test(arguments: Kind.allCases) func aDirectoryIsListedAndDeletedWhole(_ kind: Kind) throws {
        let m = try make(kind)
        try plant(m, Self.pack, [1])
        try plant(m, "snapshots/20260101T000000Z-0123456789abcdef.catalog", [2])
        for path in [Self.pack, "snapshots/20260101T000000Z-0123456789abcdef.catalog"] {
            try m.storage.move(path, to: m.area, as: "20260102T000000Z/" + path)
        }
        let top = try m.area.members(of: "")
        #expect(top.map(\.name) == ["20260102T000000Z"] && top.allSatisfy(\.isDirectory))
        #expect(Set(try m.area.members(of: "20260102T000000Z").map(\.name)) == ["packs", "snapshots"])
        try m.area.delete("20260102T000000Z")
        #expect(try m.area.members(of: "").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: m.root + "/.fbk-trash/c1/20260102T000000Z"))
    }
}

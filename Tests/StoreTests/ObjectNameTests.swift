import Foundation
import Format
import Seal
import Testing

/// ObjectName is the one place server paths are built and parsed: what it
/// builds it parses back, and it takes nothing but the exact forms.
@Suite struct ObjectNameTests {
    static let snapshot: SnapshotID = "20261127T030000Z-0123456789abcdef"

    @Test func whatIsBuiltParsesBackAsTheSameName() throws {
        let pack = PackID(sha256: SHA256.hash(Array("pack".utf8)))
        let built: [(ObjectName, ObjectKind)] = [
            (.pack(pack), .pack), (.record(Self.snapshot), .record), (.catalog(Self.snapshot), .catalog),
            (.listing(Self.snapshot), .listing), (.escrow, .escrow),
        ]
        for (name, kind) in built {
            let parsed = try #require(ObjectName(parsing: name.path), "\(name)")
            #expect(parsed == name && parsed.kind == kind)
            #expect(name.path.hasPrefix(kind.directory + "/"))
        }
        #expect(ObjectName(parsing: ObjectName.pack(pack).path)?.packID == pack)
        #expect(ObjectName(parsing: ObjectName.catalog(Self.snapshot).path)?.snapshotID == Self.snapshot)
        #expect(ObjectName.record(Self.snapshot).packID == nil && ObjectName.pack(pack).snapshotID == nil)
    }

    @Test(arguments: [
        // Not fbk's exact forms: upper-case hex, the wrong fan-out directory, a short hash, extra parts.
        "packs/AB/ab" + String(repeating: "0", count: 62) + ".pack",
        "packs/ac/ab" + String(repeating: "0", count: 62) + ".pack",
        "packs/ab/ab" + String(repeating: "0", count: 61) + ".pack",
        "packs/ab/ab" + String(repeating: "0", count: 62) + ".pack.tmp",
        "snapshots/20261127T030000Z-0123456789abcdeg.catalog",
        "snapshots/20261127T030000Z-0123456789abcdef.catalog.bak",
        "snapshots/20261127T030000Z-0123456789abcdef.json",
        "snapshots/../20261127T030000Z-0123456789abcdef.catalog",
        "snapshots/2026112T030000Z-0123456789abcdef.snapshot",
        "keys/client-secret.cms.old",
        "blobs/-20261127T030000Z.cms",
        "blobs/Config-20261127T030000Z.cms",
        "blobs/config-20261127T030000.cms",
        "blobs/config-20261127T030000Z.part001.cms",
        "blobs/config-20261127T030000Z-0123456789abcde.cms",
        "blobs/config-20261127T030000Z.tar",
        "blobs/config-20261127T030000Z",
        "",
    ])
    func strangersDoNotParse(_ path: String) {
        #expect(ObjectName(parsing: path) == nil, "\(path)")
    }

    @Test func aSnapshotIDIsOnlyEverWellFormed() throws {
        let text = "20261127T030000Z-0123456789abcdef"
        #expect(SnapshotID(text)?.text == text)
        for bad in ["", "latest", "20261127T030000Z-0123456789ABCDEF", "../20261127T030000Z-0123456789abcdef", "20261127T030000Z"] {
            #expect(SnapshotID(bad) == nil, "\(bad)")
        }
        // A document naming a malformed snapshot does not decode.
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([SnapshotID].self, from: Data(#"["../../etc"]"#.utf8)) }
        let id = try JSONDecoder().decode([SnapshotID].self, from: Data(#"["20261127T030000Z-0123456789abcdef"]"#.utf8))
        #expect(id == [Self.snapshot])
    }

    @Test func deviceBlobNamesSayKindTimeAndPart() throws {
        let single = try #require(ObjectName(parsing: "blobs/sysupgrade-20261127T030000Z.cms")?.blob)
        #expect(single.kind == "sysupgrade" && single.time == "20261127T030000Z" && single.part == nil && !single.isManifest)
        let random = try #require(ObjectName(parsing: "blobs/zfs-full-20261127T030000Z-0123456789abcdef.part0002.cms"))
        #expect(random.kind == .blob)
        let part = try #require(random.blob)
        #expect(part.kind == "zfs-full" && part.time == "20261127T030000Z-0123456789abcdef" && part.part == 2 && !part.isManifest)
        let manifest = try #require(ObjectName(parsing: "blobs/conf-20261127T030000Z-0123456789abcdef.manifest"))
        #expect(manifest.kind == .blobManifest)
        let set = try #require(manifest.blob)
        #expect(set.kind == "conf" && set.time == "20261127T030000Z-0123456789abcdef" && set.part == nil && set.isManifest)
    }
}

// fbk-bench: throughput of fbk's hot paths, single-threaded, in a release
// build. Not a test: it prints figures (recorded in Benchmarks/README.md)
// and gates nothing.
//
//   fbk-bench chunker [--mib N] [--borg] [--real DIR…]
//   fbk-bench all

import Chunker
import Foundation
import Seal
import Platform
import Format
import Backend
import Config
import Index
import Checker

struct Options {
    var mebibytes = 1024
    var borg = false
    var realDirectories = ["/usr/lib/x86_64-linux-gnu", "/usr/share/doc", "/usr/bin", "/usr/lib"]
    var repeats = 3
    var files: [String] = []
    var out: String? = nil
}

func parse(_ args: ArraySlice<String>) -> Options {
    var options = Options()
    var realGiven: [String] = []
    var it = args.makeIterator()
    while let a = it.next() {
        switch a {
        case "--mib": options.mebibytes = Int(it.next() ?? "") ?? options.mebibytes
        case "--borg": options.borg = true
        case "--repeats": options.repeats = Int(it.next() ?? "") ?? options.repeats
        case "--real": if let d = it.next() { realGiven.append(d) }
        case "--file": if let f = it.next() { options.files.append(f) }
        case "--out": options.out = it.next()
        default: fail("unknown option \(a)")
        }
    }
    if !realGiven.isEmpty { options.realDirectories = realGiven }
    return options
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("fbk-bench: \(message)\n".utf8))
    exit(2)
}

/// Deterministic pseudo-random bytes (xorshift64*), fast enough to fill a GiB.
func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var s = seed | 1
    out.withUnsafeMutableBytes { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for i in 0..<words.count {
            s ^= s >> 12; s ^= s << 25; s ^= s >> 27
            words[i] = s &* 0x2545_F491_4F6C_DD1D
        }
    }
    return out
}

/// Up to `count` bytes of real files (libraries, documentation, binaries)
/// concatenated, so the chunker sees data with real structure.
func realBytes(count: Int, directories: [String]) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(count)
    let fm = FileManager.default
    for dir in directories {
        guard let e = fm.enumerator(atPath: dir) else { continue }
        while let rel = e.nextObject() as? String {
            if out.count >= count { return out }
            let path = dir + "/" + rel
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            guard let data = fm.contents(atPath: path) else { continue }
            out.append(contentsOf: data.prefix(count - out.count))
        }
    }
    return out
}

func measure(_ name: String, bytes: [UInt8], repeats: Int, _ body: (UnsafeRawBufferPointer) -> (chunks: Int, detail: String)) {
    var best = Double.infinity
    var last = (chunks: 0, detail: "")
    let clock = ContinuousClock()
    bytes.withUnsafeBytes { raw in
        for _ in 0..<repeats {
            let t0 = clock.now
            last = body(raw)
            let d = clock.now - t0
            let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            best = min(best, s)
        }
    }
    let mib = Double(bytes.count) / 1_048_576
    print(String(format: "%-44@ %8.1f MiB/s  %6.2f GiB/s  %6d chunks  mean %9.0f B  %@",
                 name, mib / best, mib / best / 1024, last.chunks,
                 last.chunks == 0 ? 0 : Double(bytes.count) / Double(last.chunks), last.detail))
}

func chunkerBench(_ options: Options) {
    let size = options.mebibytes << 20
    let seed = [UInt8](repeating: 0x5a, count: 32)
    var sets: [(String, ChunkerParameters)] = [("fbk default", .default)]
    if options.borg { sets.append(("borg 19,23,21,4095", .borg)) }
    var inputs: [(String, [UInt8])] = []
    if options.files.isEmpty {
        inputs.append(("random", randomBytes(count: size, seed: 42)))
        let real = realBytes(count: size, directories: options.realDirectories)
        inputs.append(("real files \(real.count >> 20) MiB", real))
    } else {
        for f in options.files {
            guard let d = FileManager.default.contents(atPath: f) else { fail("cannot read \(f)") }
            inputs.append(((f as NSString).lastPathComponent, [UInt8](d)))
        }
    }
    print("chunker: single thread, in memory, best of \(options.repeats)")
    for (label, params) in sets {
        let chunker = try! Chunker(parameters: params, seed: seed)
        for (dataLabel, data) in inputs {
            measure("buzhash \(label), \(dataLabel)", bytes: data, repeats: options.repeats) { raw in
                var n = 0
                chunker.feed(raw) { _ in n += 1 }
                chunker.finish { _ in n += 1 }
                return (n, "")
            }
        }
    }
}

/// Seal throughput on 32 MiB objects: compress + encrypt, and decrypt +
/// decompress, as a pack would be handled (zstd frames per 1 MiB chunk,
/// one CMS object), with a throwaway RSA-4096 key.
func sealBench(_ options: Options) {
    let pair = try! generateKeyPair(type: .rsa4096, subject: "bench", passphrase: Array("bench".utf8))
    let dir = NSTemporaryDirectory() + "/fbk-bench-\(getpid())"
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = FileManager.default.createFile(atPath: dir + "/k.pem", contents: Data(pair.privateKeyPEM.utf8))
    let certificate = try! Certificate(bytes: Array(pair.certificatePEM.utf8))
    let key = try! PrivateKey(contentsOf: dir + "/k.pem", passphrase: Array("bench".utf8))
    let envelope = try! Envelope(recipients: [certificate])
    let opener = try! Opener(key: key, certificate: certificate)
    let size = 32 << 20
    let chunk = 1 << 20
    print("seal: 32 MiB objects, zstd level 3 per 1 MiB chunk + CMS AES-256-GCM, RSA-4096, best of \(options.repeats)")
    for (label, data) in [("random", randomBytes(count: size, seed: 7)),
                          ("real files", realBytes(count: size, directories: options.realDirectories))] {
        let compressor = try! ChunkCompressor(level: 3)
        let decompressor = ChunkDecompressor()
        var sealed: [UInt8] = []
        var forms: [(StorageForm, Int, Int)] = []
        measure("compress+encrypt \(label)", bytes: data, repeats: options.repeats) { raw in
            var packed: [UInt8] = []
            forms = []
            var i = 0
            while i < raw.count {
                let n = min(chunk, raw.count - i)
                let (form, bytes) = try! compressor.compress(UnsafeRawBufferPointer(rebasing: raw[i..<(i + n)]))
                forms.append((form, bytes.count, n))
                packed += bytes
                i += n
            }
            sealed = try! envelope.seal(packed)
            return (forms.count, "sealed \(sealed.count >> 10) KiB")
        }
        measure("decrypt+decompress \(label)", bytes: data, repeats: options.repeats) { _ in
            let packed = try! opener.open(sealed).plaintext
            var offset = 0
            var total = 0
            packed.withUnsafeBytes { raw in
                for (form, stored, plain) in forms {
                    total += try! decompressor.decompress(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + stored)]),
                                                          form: form, plainLength: plain).count
                    offset += stored
                }
            }
            precondition(total == size)
            return (forms.count, "")
        }
    }
}

/// Index rebuild of a synthetic repository: one snapshot of 1,000,000
/// chunks in 1,000 packs, from a local directory mirror.
func rebuildBench(_ options: Options) {
    let chunksPerPack = 1000, packCount = max(1, options.mebibytes == 1024 ? 1000 : options.mebibytes)
    let root = NSTemporaryDirectory() + "/fbk-rebuild-bench-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: root) }
    let keys = try! ClientKeys(secret: [UInt8](repeating: 3, count: 32))
    let signing = keys.signingKey()
    var packs: [PackListing] = []
    var catalogPacks: [Catalog.Object] = []
    var counter: UInt64 = 0
    for p in 0..<packCount {
        var name = [UInt8](repeating: 0, count: 32)
        withUnsafeBytes(of: UInt64(p).littleEndian) { for (i, b) in $0.enumerated() { name[i] = b } }
        let digest = SHA256.hash(name)
        let path = ObjectName.pack(PackID(sha256: digest)).path
        let file = root + "/c1/" + path
        try! FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: file, contents: Data([1]))
        catalogPacks.append(Catalog.Object(path: path, size: 1, sha256: digest.hex))
        var chunks: [PackListing.ListedChunk] = []
        chunks.reserveCapacity(chunksPerPack)
        for _ in 0..<chunksPerPack {
            counter += 1
            let id = withUnsafeBytes(of: counter) { SHA256.hash(Array($0)) }
            chunks.append(.init(id: id.hex, kind: 0, length: 1 << 20))
        }
        packs.append(PackListing(path: path, chunks: chunks))
    }
    let id: SnapshotID = "20260101T000000Z-0000000000000001"
    try! FileManager.default.createDirectory(atPath: root + "/c1/snapshots", withIntermediateDirectories: true)
    let listing = PackListingDocument(client: "c1", snapshot: id, root: SHA256.hash([0]).hex, packs: packs)
    let listingBytes = try! listing.sealed(keys: keys)
    _ = FileManager.default.createFile(atPath: root + "/c1/" + ObjectName.listing(id).path, contents: Data(listingBytes))
    _ = FileManager.default.createFile(atPath: root + "/c1/" + ObjectName.record(id).path, contents: Data([1]))
    let catalog = Catalog(client: "c1", snapshot: id, created: "2026-01-01T00:00:00Z",
                          record: Catalog.Object(path: ObjectName.record(id).path, size: 1, sha256: SHA256.hash([1]).hex),
                          listing: Catalog.Object(path: ObjectName.listing(id).path, size: listingBytes.count, sha256: SHA256.hash(listingBytes).hex),
                          packs: catalogPacks, addedBytes: 0, signingKey: signing.publicKey.hex)
    _ = FileManager.default.createFile(atPath: root + "/c1/" + ObjectName.catalog(id).path, contents: Data(SignedDocument.encode(catalog, key: signing)))
    let source = try! DirectoryBackend(storageRoot: root, client: "c1")
    let clock = ContinuousClock()
    let t0 = clock.now
    let summary = try! IndexRebuild.run(sources: [RebuildSource(mirrorURL: "file:///m/c1/", source: source)],
                                        keys: keys, client: "c1", indexPath: root + "/state/index.sqlite")
    let d = clock.now - t0
    let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    for w in summary.warnings.prefix(3) { print("warning: \(w)") }
    print(String(format: "index rebuild: %d chunks in %d packs from a local mirror in %.1f s (%.0f chunks/s)",
                 summary.chunks, summary.packs, seconds, Double(summary.chunks) / seconds))
}

/// fbk check over a synthetic storage root: 10,000 packs of 16 KiB and 100
/// snapshots whose catalogs each list every pack.
func checkBench(_ options: Options) {
    let packCount = 10_000, snapshotCount = 100, packSize = 16 << 10
    let root = NSTemporaryDirectory() + "/fbk-check-bench-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: root) }
    let keys = try! ClientKeys(secret: [UInt8](repeating: 5, count: 32))
    let signing = keys.signingKey()
    var objects: [Catalog.Object] = []
    var counter: UInt64 = 0
    for _ in 0..<packCount {
        counter += 1
        var bytes = randomBytes(count: packSize, seed: counter)
        bytes[0] = UInt8(truncatingIfNeeded: counter)
        let digest = SHA256.hash(bytes)
        let path = ObjectName.pack(PackID(sha256: digest)).path
        try! FileManager.default.createDirectory(atPath: root + "/c1/" + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: root + "/c1/" + path, contents: Data(bytes))
        objects.append(Catalog.Object(path: path, size: packSize, sha256: digest.hex))
    }
    try! FileManager.default.createDirectory(atPath: root + "/c1/snapshots", withIntermediateDirectories: true)
    for i in 0..<snapshotCount {
        let id = SnapshotID(String(format: "20260101T%06dZ-%016x", i, i))!
        let record: [UInt8] = Array("record \(i)".utf8)
        _ = FileManager.default.createFile(atPath: root + "/c1/" + ObjectName.record(id).path, contents: Data(record))
        let catalog = Catalog(client: "c1", snapshot: id, created: "2026-01-01T00:00:00Z",
                              record: Catalog.Object(path: ObjectName.record(id).path, size: record.count, sha256: SHA256.hash(record).hex),
                              packs: objects, addedBytes: 0, signingKey: signing.publicKey.hex)
        _ = FileManager.default.createFile(atPath: root + "/c1/" + ObjectName.catalog(id).path, contents: Data(SignedDocument.encode(catalog, key: signing)))
    }
    let config = try! CheckConfig.parse("clients:\n  - name: c1\n    kind: fbk\n    signing_key: \(signing.publicKey.hex)\n", file: "bench")
    let clock = ContinuousClock()
    for deep in [false, true] {
        let t0 = clock.now
        let report = Checker.run(config: config, root: root, deep: deep)
        let d = clock.now - t0
        let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        let mib = Double(packCount * packSize) / 1_048_576
        print(String(format: "check%@: %d packs, %d snapshots in %.2f s (status %@)%@", deep ? " --deep" : "", packCount, snapshotCount,
                     seconds, report.status.rawValue, deep ? String(format: ", %.0f MiB hashed at %.0f MiB/s", mib, mib / seconds) : ""))
    }
}

/// `fbk prune` over a client of 10,000 packs and 1,000 daily snapshots,
/// run as the release binary under /usr/bin/time: seconds and peak RSS.
/// Ten packs arrive a day and each stays needed for 120 days, so a
/// catalog lists about 1,200 packs (1.2 million entries in all); the
/// policy keeps 21 days, 14 dailies, 8 weeklies and 12 monthlies.
func pruneBench(_ options: Options) {
    let packCount = 10_000, snapshotCount = 1_000, lifetime = 120
    let root = NSTemporaryDirectory() + "/fbk-prune-bench-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: root) }
    let keys = try! ClientKeys(secret: [UInt8](repeating: 6, count: 32))
    let signing = keys.signingKey()
    let pair = try! generateKeyPair(type: .p384, subject: "/CN=bench", passphrase: Array("x".utf8))
    let certificate = try! Certificate(bytes: Array(pair.certificatePEM.utf8))
    let envelope = try! Envelope(recipients: [certificate])
    let recipients = [Catalog.Recipient(fingerprint: certificate.fingerprint, issuerSerial: Hex.encode(certificate.issuerAndSerial))]
    let day0 = (Date().timeIntervalSince1970 / 86_400).rounded(.down) * 86_400 - Double(snapshotCount) * 86_400
    func stamp(_ path: String, day: Int) {
        var times = [timespec(tv_sec: Int(day0) + day * 86_400 + 3600, tv_nsec: 0), timespec(tv_sec: Int(day0) + day * 86_400 + 3600, tv_nsec: 0)]
        utimensat(AT_FDCWD, path, &times, 0)
    }
    var packs: [Catalog.Object] = []
    for i in 0..<packCount {
        let sealed = try! envelope.seal(randomBytes(count: 1024, seed: UInt64(i + 1)))
        let digest = SHA256.hash(sealed)
        let path = ObjectName.pack(PackID(sha256: digest)).path
        let file = root + "/c1/" + path
        try! FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: file, contents: Data(sealed))
        stamp(file, day: i * snapshotCount / packCount)
        packs.append(Catalog.Object(path: path, size: sealed.count, sha256: digest.hex))
    }
    try! FileManager.default.createDirectory(atPath: root + "/c1/snapshots", withIntermediateDirectories: true)
    let perDay = packCount / snapshotCount
    for day in 0..<snapshotCount {
        let t = Date(timeIntervalSince1970: day0 + Double(day) * 86_400 + 3000)
        let id = SnapshotID(Timestamp.compactTime(t) + String(format: "-%016x", day))!
        let record: [UInt8] = Array("record \(day)".utf8)
        let recordFile = root + "/c1/" + ObjectName.record(id).path
        _ = FileManager.default.createFile(atPath: recordFile, contents: Data(record))
        stamp(recordFile, day: day)
        let live = packs[max(0, (day - lifetime) * perDay)..<min(packCount, (day + 1) * perDay)].sorted { $0.path < $1.path }
        let catalog = Catalog(client: "c1", snapshot: id, created: Timestamp.rfc3339(t),
                              record: Catalog.Object(path: ObjectName.record(id).path, size: record.count, sha256: SHA256.hash(record).hex),
                              packs: live, addedBytes: 0, signingKey: signing.publicKey.hex, reuseHorizon: 14 * 86_400, recipients: recipients)
        let file = root + "/c1/" + ObjectName.catalog(id).path
        _ = FileManager.default.createFile(atPath: file, contents: Data(SignedDocument.encode(catalog, key: signing)))
        stamp(file, day: day)
    }
    let config = root + "/check.conf"
    try! """
        clients:
          - name: c1
            kind: fbk
            signing_key: \(signing.publicKey.hex)
            max_age: 100000d
            retention:
              keep_within: 21d
              keep_last: 3
              keep_daily: 14
              keep_weekly: 8
              keep_monthly: 12
        """.write(toFile: config, atomically: true, encoding: .utf8)
    let fbk = (CommandLine.arguments[0] as NSString).deletingLastPathComponent + "/fbk"
    let catalogBytes = (try? FileManager.default.contentsOfDirectory(atPath: root + "/c1/snapshots"))?.filter { $0.hasSuffix(".catalog") }
        .reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: root + "/c1/snapshots/" + $1)[.size] as? Int) ?? 0) } ?? 0
    for dryRun in [true, false] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/time")
        p.arguments = ["-f", "%e %M", fbk, "prune", "--config", config, "--root", root, "--json"] + (dryRun ? ["--dry-run"] : [])
        let err = Pipe(), out = Pipe()
        p.standardError = err
        p.standardOutput = out
        try! p.run()
        let plan = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let client = ((try? JSONSerialization.jsonObject(with: plan)) as? [String: Any]).flatMap { ($0["clients"] as? [[String: Any]])?.first } ?? [:]
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let last = text.split(separator: "\n").last.map(String.init) ?? ""
        let f = last.split(separator: " ")
        let rss = f.count == 2 ? (Double(f[1]) ?? 0) / 1024 : 0
        print(String(format: "prune%@: %d packs, %d snapshots (%.0f MiB of catalogs) in %@ s, peak RSS %.1f MiB, exit %d: %d snapshots kept, %d removed, %d objects to the trash",
                     dryRun ? " --dry-run" : "", packCount, snapshotCount, Double(catalogBytes) / 1_048_576, String(f.first ?? "?"), rss, p.terminationStatus,
                     (client["kept"] as? [String: Any])?.count ?? -1, (client["removed_snapshots"] as? [Any])?.count ?? -1,
                     (client["removed_objects"] as? [Any])?.count ?? -1))
    }
}

/// Writes the benchmark inputs to files so other tools can chunk the same bytes.
func generate(_ options: Options) {
    guard let out = options.out else { fail("gen needs --out PREFIX") }
    let size = options.mebibytes << 20
    let random = randomBytes(count: size, seed: 42)
    let real = realBytes(count: size, directories: options.realDirectories)
    _ = FileManager.default.createFile(atPath: out + "-random.bin", contents: Data(random))
    _ = FileManager.default.createFile(atPath: out + "-real.bin", contents: Data(real))
    print("wrote \(out)-random.bin (\(random.count) bytes), \(out)-real.bin (\(real.count) bytes)")
}

OpenSSLLibrary.keepStateUntilExit()
let args = CommandLine.arguments.dropFirst()
switch args.first {
case "gen": generate(parse(args.dropFirst()))
case "chunker": chunkerBench(parse(args.dropFirst()))
case "seal": sealBench(parse(args.dropFirst()))
case "rebuild": rebuildBench(parse(args.dropFirst()))
case "check": checkBench(parse(args.dropFirst()))
case "prune": pruneBench(parse(args.dropFirst()))
case "all", nil:
    chunkerBench(parse(args.dropFirst()))
    sealBench(parse(args.dropFirst()))
    rebuildBench(parse(args.dropFirst()))
    checkBench(parse(args.dropFirst()))
    pruneBench(parse(args.dropFirst()))
default: fail("unknown benchmark \(args.first!); try: chunker, seal, rebuild, check, prune, all")
}

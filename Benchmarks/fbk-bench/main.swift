// fbk-bench: throughput of fbk's hot paths, single-threaded, in a release
// build. Not a test: it prints figures (recorded in Benchmarks/README.md)
// and gates nothing.
//
//   fbk-bench chunker [--mib N] [--borg] [--real DIR…]
//   fbk-bench all

import Chunker
import Foundation
import Seal

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

let args = CommandLine.arguments.dropFirst()
switch args.first {
case "gen": generate(parse(args.dropFirst()))
case "chunker": chunkerBench(parse(args.dropFirst()))
case "seal": sealBench(parse(args.dropFirst()))
case "all", nil:
    chunkerBench(parse(args.dropFirst()))
    sealBench(parse(args.dropFirst()))
default: fail("unknown benchmark \(args.first!); try: chunker, seal, all")
}

import Foundation
import Platform
import Config
import Testing
import TestSupport

/// The POSIX-sh device scripts, run under busybox with stub sysupgrade,
/// MTD and zfs, against real nginx mirrors, decrypted by fbk and watched
/// by fbk check.
@Suite(.hangGuard) struct DeviceTests {
    /// Fresh random bytes (each call different, so nothing deduplicates).
    func random(_ n: Int) -> [UInt8] { sampleBytes(n, seed: UInt64.random(in: 1...UInt64.max)) }

    struct Device {
        let dir: TemporaryDirectory
        let mirrors: [NginxMirror]
        var conf: String { dir.file("device.conf") }
    }

    func setup(client: String, extra: String = "") throws -> Device {
        let dir = try TemporaryDirectory()
        let mirrors = [try NginxMirror(users: [client: "dev-pw"]), try NginxMirror(users: [client: "dev-pw"])]
        #expect(try CLI.run(["keygen", "--out", dir.file("keys"), "--type", "p384", "--allow-short-passphrase"], environment: ["FBK_PASSPHRASE": "pw"]).status == 0)
        let pw = try dir.write("password", Array("dev-pw\n".utf8))
        chmod(pw, 0o600)
        try FileManager.default.createDirectory(atPath: dir.file("tmp"), withIntermediateDirectories: true)
        try dir.write("device.conf", Array("""
            CLIENT=\(client)
            MIRRORS="\(mirrors[0].url(client)) \(mirrors[1].url(client))"
            PASSWORD_FILE=\(pw)
            RECIPIENT=\(dir.file("keys/recipient.pem"))
            PART_SIZE=65536
            TMP=\(dir.file("tmp"))
            \(extra)
            """.utf8))
        return Device(dir: dir, mirrors: mirrors)
    }

    func run(_ script: String, _ d: Device) throws -> (status: Int32, stdout: [UInt8], stderr: String) {
        try runTool("busybox", ["sh", repositoryRoot + "/contrib/" + script],
                    environment: ["FBK_DEVICE_CONF": d.conf, "PATH": d.dir.file("stubs") + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "")])
    }

    func blobs(_ d: Device, _ i: Int, _ client: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: d.mirrors[i].storageRoot + "/\(client)/blobs")) ?? []).sorted()
    }

    func decrypt(_ d: Device, _ path: String) throws -> [UInt8] {
        let out = d.dir.file("plain-\(UInt32.random(in: 0...UInt32.max))")
        let r = try CLI.run(["decrypt", "--key", d.dir.file("keys/private.pem"), "--out", out, path], environment: ["FBK_PASSPHRASE": "pw"])
        guard r.status == 0 else { throw FixtureError("decrypt \(path): \(r.stderr)") }
        return d.dir.read((out as NSString).lastPathComponent) ?? []
    }

    /// Decrypts the parts a manifest lists, in order, and concatenates them.
    func reassemble(_ d: Device, mirror: Int, client: String, manifest: String) throws -> [UInt8] {
        let dir = d.mirrors[mirror].storageRoot + "/\(client)/blobs/"
        let text = try String(contentsOfFile: dir + manifest, encoding: .utf8)
        let base = manifest.replacingOccurrences(of: ".manifest", with: "")
        var out: [UInt8] = []
        for line in text.split(separator: "\n") where line.hasPrefix("part ") {
            let n = Int(line.split(separator: " ")[1])!
            out += try decrypt(d, dir + base + String(format: ".part%04d.cms", n))
        }
        return out
    }

    @Test func openWrtUploadsConfigAndFlashThatFbkDecryptsAndChecks() throws {
        let d = try setup(client: "wifi", extra: "MTD_TABLE=MTDTABLE\nMTD_DIR=MTDDIR")
        let table = try d.dir.write("mtd", Array("dev:    size   erasesize  name\nmtd0: 00010000 00010000 \"u-boot\"\nmtd1: 00030000 00010000 \"firmware\"\n".utf8))
        let uboot = random(64 << 10), firmware = random(3 * (64 << 10) - 100)
        try d.dir.write("mtddev/mtd0", uboot)
        try d.dir.write("mtddev/mtd1", firmware)
        var conf = try String(contentsOfFile: d.conf, encoding: .utf8)
        conf = conf.replacingOccurrences(of: "MTDTABLE", with: table).replacingOccurrences(of: "MTDDIR", with: d.dir.file("mtddev"))
        try conf.write(toFile: d.conf, atomically: true, encoding: .utf8)
        let config = Array("the router's configuration archive".utf8)
        let stub = try d.dir.write("stubs/sysupgrade", Array("#!/bin/sh\n[ \"$1\" = -b ] && printf '%s' \"the router's configuration archive\" > \"$2\"\n".utf8))
        chmod(stub, 0o755)

        let r = try run("openwrt/fbk-openwrt.sh", d)
        #expect(r.status == 0, "\(r.stderr)")
        let names = blobs(d, 0, "wifi")
        #expect(names == blobs(d, 1, "wifi"))
        let sysupgrade = try #require(names.first { $0.hasPrefix("sysupgrade-") })
        #expect(try decrypt(d, d.mirrors[0].storageRoot + "/wifi/blobs/" + sysupgrade) == config)
        let fw = try #require(names.first { $0.hasPrefix("flash-mtd1-firmware-") && $0.hasSuffix(".manifest") })
        #expect(names.filter { $0.hasPrefix("flash-mtd1-firmware-") && $0.contains(".part") }.count == 3)
        #expect(try reassemble(d, mirror: 1, client: "wifi", manifest: fw) == firmware)
        let boot = try #require(names.first { $0.hasPrefix("flash-mtd0-u-boot-") && $0.hasSuffix(".manifest") })
        #expect(try reassemble(d, mirror: 0, client: "wifi", manifest: boot) == uboot)

        // fbk check sees the blobs fresh, then stale after their max age.
        let check = try d.dir.write("check.conf", Array("""
            clients:
              - name: wifi
                kind: device
                max_age: 36h
                blobs:
                  - kind: sysupgrade
                    min_size: 20B
                  - kind: flash-mtd1-firmware
                    min_size: 100KB
            """.utf8))
        let fresh = try CLI.run(["check", "--config", check, "--root", d.mirrors[0].storageRoot, "--deep"])
        #expect(fresh.status == 0, "\(fresh.stdout)")
        for n in names { setModificationTime(d.mirrors[0].storageRoot + "/wifi/blobs/" + n, daysAgo: 3) }
        let stale = try CLI.run(["check", "--config", check, "--root", d.mirrors[0].storageRoot])
        #expect(stale.status == 2)
        #expect(stale.stdout.contains("stale: the newest sysupgrade blob"), "\(stale.stdout)")

        // One mirror down: the run still succeeds on the other.
        d.mirrors[1].stop()
        sleep(1)  // a new UTC second, so new object names
        let again = try run("openwrt/fbk-openwrt.sh", d)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(blobs(d, 0, "wifi").count > names.count)
        #expect(again.stderr.contains("upload of"))
    }

    /// An OPNsense firewall: a /conf to tar, and a zfs stub that sends
    /// `stream`, lists `snapshots` and logs every other call.
    func firewall(stream: [UInt8], snapshots: [String] = []) throws -> Device {
        let d = try setup(client: "fw", extra: "POOL=zroot\nCONF_DIR=CONFDIR")
        try d.dir.write("conf/config.xml", Array("<opnsense/>".utf8))
        var conf = try String(contentsOfFile: d.conf, encoding: .utf8)
        conf = conf.replacingOccurrences(of: "CONFDIR", with: d.dir.file("conf"))
        try conf.write(toFile: d.conf, atomically: true, encoding: .utf8)
        try d.dir.write("zfs-stream", stream)
        let zfs = try d.dir.write("stubs/zfs", Array("""
            #!/bin/sh
            case "$1" in
              send) cat \(d.dir.file("zfs-stream")) ;;
              list) \(snapshots.map { "echo \($0);" }.joined()) ;;
              *) echo "$@" >> \(d.dir.file("zfs-calls")) ;;
            esac
            """.utf8))
        chmod(zfs, 0o755)
        return d
    }

    @Test func opnsenseSendsZfsAndConfInPartsWithAManifest() throws {
        let stream = random(150_000)
        let d = try firewall(stream: stream)
        let r = try run("opnsense/fbk-opnsense.sh", d)
        #expect(r.status == 0, "\(r.stderr)")
        let names = blobs(d, 0, "fw")
        let manifest = try #require(names.first { $0.hasPrefix("zfs-full-") && $0.hasSuffix(".manifest") })
        #expect(try reassemble(d, mirror: 0, client: "fw", manifest: manifest) == stream)
        // One command: every part checked against the manifest, decrypted, concatenated.
        let dir = d.mirrors[0].storageRoot + "/fw/blobs/"
        let whole = d.dir.file("zfs.stream")
        let one = try CLI.run(["decrypt", "--key", d.dir.file("keys/private.pem"), "--out", whole, dir + manifest], environment: ["FBK_PASSPHRASE": "pw"])
        #expect(one.status == 0, "\(one.stderr)")
        #expect(d.dir.read("zfs.stream") == stream)
        // A replaced part is refused, and nothing is left at --out.
        let part = try #require(names.first { $0.hasPrefix("zfs-full-") && $0.hasSuffix(".part0002.cms") })
        var bytes = try #require(FileManager.default.contents(atPath: dir + part))
        bytes[bytes.count / 2] ^= 1
        try bytes.write(to: URL(fileURLWithPath: dir + part))
        let bad = try CLI.run(["decrypt", "--key", d.dir.file("keys/private.pem"), "--out", d.dir.file("bad"), dir + manifest], environment: ["FBK_PASSPHRASE": "pw"])
        #expect(bad.status == 65 && bad.stderr.contains("part0002"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.dir.file("bad")))
        let confBlob = try #require(names.first { $0.hasPrefix("conf-") })
        let tarball = try decrypt(d, d.mirrors[0].storageRoot + "/fw/blobs/" + confBlob)
        let list = try runTool("tar", ["-tzf", "-"], stdin: tarball)
        #expect(String(decoding: list.stdout, as: UTF8.self).contains("conf/config.xml"))
        let calls = try String(contentsOfFile: d.dir.file("zfs-calls"), encoding: .utf8)
        #expect(calls.contains("snapshot -r zroot@fbk-"))
    }

    /// The device library must not overwrite the script's own variables:
    /// `fbk_parts` once set `base`, so the old ZFS snapshot was never
    /// destroyed (a blob name went to `zfs destroy` instead) and the pool filled.
    @Test func opnsenseDestroysTheOldBaseSnapshotAfterAnIncremental() throws {
        let d = try firewall(stream: random(50_000), snapshots: ["zroot@fbk-20261101T000000Z"])
        let r = try run("opnsense/fbk-opnsense.sh", d)
        #expect(r.status == 0, "\(r.stderr)")
        let calls = try String(contentsOfFile: d.dir.file("zfs-calls"), encoding: .utf8).split(separator: "\n").map(String.init)
        let destroyed = calls.filter { $0.hasPrefix("destroy") }
        // On the first of a month the script sends a full stream; either way the old base goes.
        #expect(destroyed == ["destroy -r zroot@fbk-20261101T000000Z"], "\(calls)")
    }

    /// `fbk enroll --device` writes the check entry for exactly the blob
    /// kinds the script uploads: after one run, the check is clean.
    @Test func anEnrolledRouterChecksCleanAfterItsFirstRun() throws {
        let d = try setup(client: "wifi", extra: "MTD_TABLE=MTDTABLE\nMTD_DIR=MTDDIR")
        let table = try d.dir.write("mtd", Array("dev:    size   erasesize  name\nmtd0: 00010000 00010000 \"u-boot\"\nmtd1: 00030000 00010000 \"Firmware (A)\"\n".utf8))
        try d.dir.write("mtddev/mtd0", random(64 << 10))
        try d.dir.write("mtddev/mtd1", random(0x30000))
        var conf = try String(contentsOfFile: d.conf, encoding: .utf8)
        conf = conf.replacingOccurrences(of: "MTDTABLE", with: table).replacingOccurrences(of: "MTDDIR", with: d.dir.file("mtddev"))
        try conf.write(toFile: d.conf, atomically: true, encoding: .utf8)
        let sysupgrade = try d.dir.write("stubs/sysupgrade", Array("#!/bin/sh\nhead -c 5000 /dev/urandom > \"$2\"\n".utf8))
        chmod(sysupgrade, 0o755)
        let enroll = try CLI.run(["enroll", "wifi", "--device", "openwrt", "--mtd-table", table,
                                  "--mirror", d.mirrors[0].url("wifi"), "--mirror", d.mirrors[1].url("wifi"),
                                  "--recipient", d.dir.file("keys/recipient.pem"), "--out", d.dir.file("bundles")])
        #expect(enroll.status == 0, "\(enroll.stderr)")
        let entry = try String(contentsOfFile: d.dir.file("bundles/wifi/check-entry.yaml"), encoding: .utf8)
        for kind in ["sysupgrade", "flash-mtd0-u-boot", "flash-mtd1-firmware__a_"] { #expect(entry.contains("kind: \(kind)\n"), "\(entry)") }
        // A flash dump is the whole partition: the table's size is its minimum.
        #expect(entry.contains("kind: flash-mtd1-firmware__a_\n        min_size: 196608\n"), "\(entry)")
        // It goes under one clients: with an fbk client's entry, once.
        #expect(try CLI.run(["enroll", "web1", "--mirror", d.mirrors[0].url("web1"), "--recipient", d.dir.file("keys/recipient.pem"),
                             "--out", d.dir.file("bundles")]).status == 0)
        let web1 = try String(contentsOfFile: d.dir.file("bundles/web1/check-entry.yaml"), encoding: .utf8)
        let both = try CheckConfig.parse("clients:\n" + web1 + entry, file: "check.conf")
        #expect(both.clients.map(\.name) == ["web1", "wifi"])
        #expect(throws: StoreError.self) { try CheckConfig.parse("clients:\n" + entry + entry, file: "check.conf") }
        let settings = try String(contentsOfFile: d.dir.file("bundles/wifi/fbk-device.conf"), encoding: .utf8)
        #expect(settings.contains("CLIENT=wifi") && settings.contains(d.mirrors[1].url("wifi")))
        #expect(enroll.stdout.contains("/etc/crontabs/root"))
        let r = try run("openwrt/fbk-openwrt.sh", d)
        #expect(r.status == 0, "\(r.stderr)")
        let config = try d.dir.write("check.conf", Array(("clients:\n" + entry).utf8))
        let check = try CLI.run(["check", "--config", config, "--root", d.mirrors[0].storageRoot])
        #expect(check.status == 0, "\(check.stdout)")
    }
}

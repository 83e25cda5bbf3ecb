import Foundation
import TestSupport
import Testing

/// Encrypts a file with the openssl command line, as a device script does.
func opensslEncrypt(_ mode: [String], input: String, output: String, recipient: String) throws -> Int32 {
    try runTool("openssl", mode + ["-binary", "-stream", "-outform", "DER", "-in", input, "-out", output, recipient]).status
}

@Suite struct KeyCommandTests {
    let passphrase = ["FBK_PASSPHRASE": "correct horse battery"]

    @Test func keygenWritesPrivateFilesAndRefusesToOverwrite() throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("keys")
        let r = try CLI.run(["keygen", "--out", out, "--type", "p384", "--subject", "/CN=op/O=lab"], environment: passphrase)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("EC P-384"))
        for name in ["recipient.pem", "private.pem"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: out + "/" + name)
            #expect((attributes[.posixPermissions] as? Int) == 0o600, "\(name)")
        }
        let key = try String(contentsOfFile: out + "/private.pem", encoding: .utf8)
        #expect(key.hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        let again = try CLI.run(["keygen", "--out", out], environment: passphrase)
        #expect(again.status == 73)
        #expect(again.stderr.contains("never overwrites"))
        #expect(try String(contentsOfFile: out + "/private.pem", encoding: .utf8) == key)
    }

    @Test func keygenNeedsAPassphraseFromASafePlace() throws {
        let dir = try TemporaryDirectory()
        // No terminal, no variable, no file: refuse rather than write an unprotected key.
        let r = try CLI.run(["keygen", "--out", dir.file("k")], environment: ["FBK_PASSPHRASE": ""])
        #expect(r.status != 0)
        #expect(!FileManager.default.fileExists(atPath: dir.file("k/private.pem")))
        let bad = try CLI.run(["keygen", "--out", dir.file("k2"), "--type", "dsa"])
        #expect(bad.status == 64)
    }

    @Test func decryptRoundTripsWithOpensslAndPassphraseFile() throws {
        let dir = try TemporaryDirectory()
        let keys = dir.file("keys")
        try Data("s3cret passphrase\n".utf8).write(to: URL(fileURLWithPath: dir.file("pass")))
        #expect(try CLI.run(["keygen", "--out", keys, "--passphrase-file", dir.file("pass")]).status == 0)
        let plain = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try Data(plain).write(to: URL(fileURLWithPath: dir.file("plain")))
        // A device encrypts with the openssl command line (here: smime, CBC).
        #expect(try opensslEncrypt(["smime", "-encrypt", "-aes-256-cbc"], input: dir.file("plain"),
                                   output: dir.file("blob"), recipient: keys + "/recipient.pem") == 0)

        let r = try CLI.run(["decrypt", "--key", keys + "/private.pem", "--passphrase-file", dir.file("pass"),
                             "--out", dir.file("out"), dir.file("blob")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.contents(atPath: dir.file("out")) == Data(plain))
        #expect(r.stderr.contains("integrity was not checked"))

        // To standard output as well, and never over an existing file.
        let toStdout = try CLI.run(["decrypt", "--key", keys + "/private.pem", dir.file("blob")],
                                   environment: ["FBK_PASSPHRASE": "s3cret passphrase"])
        #expect(toStdout.status == 0)
        #expect(toStdout.stdoutBytes == Data(plain))
        let exists = try CLI.run(["decrypt", "--key", keys + "/private.pem", "--passphrase-file", dir.file("pass"),
                                  "--out", dir.file("out"), dir.file("blob")])
        #expect(exists.status == 73)

        let wrong = try CLI.run(["decrypt", "--key", keys + "/private.pem", "--out", dir.file("out2"), dir.file("blob")],
                                environment: ["FBK_PASSPHRASE": "nope"])
        #expect(wrong.status == 77)
        #expect(wrong.stderr.contains("wrong passphrase"))
    }

    @Test func damagedObjectsGiveIntegrityErrorsAndNoOutput() throws {
        let dir = try TemporaryDirectory()
        let keys = dir.file("keys")
        let env = ["FBK_PASSPHRASE": "pw for damage"]
        #expect(try CLI.run(["keygen", "--out", keys, "--type", "p384"], environment: env).status == 0)
        let plain = [UInt8](repeating: 0x41, count: 200_000)
        try Data(plain).write(to: URL(fileURLWithPath: dir.file("plain")))
        #expect(try opensslEncrypt(["cms", "-encrypt", "-aes-256-gcm"], input: dir.file("plain"),
                                   output: dir.file("obj"), recipient: keys + "/recipient.pem") == 0)
        var object = [UInt8](FileManager.default.contents(atPath: dir.file("obj"))!)
        object[object.count / 2] ^= 0x04
        try Data(object).write(to: URL(fileURLWithPath: dir.file("tampered")))
        try Data(object.prefix(object.count / 3)).write(to: URL(fileURLWithPath: dir.file("truncated")))
        try Data("garbage, not CMS".utf8).write(to: URL(fileURLWithPath: dir.file("garbage")))
        for (name, fragment) in [("tampered", "altered or damaged"), ("truncated", "truncated"), ("garbage", "not an encrypted CMS")] {
            let r = try CLI.run(["decrypt", "--key", keys + "/private.pem", "--out", dir.file(name + ".out"),
                                 dir.file(name)], environment: env)
            #expect(r.status == 65, "\(name): \(r.stderr)")
            #expect(r.stderr.contains(fragment), "\(name): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.file(name + ".out")))
        }
    }

    @Test func largeObjectsDecryptInBoundedMemory() throws {
        // 96 MiB through OpenSSL's in-memory path would peak near 400 MiB.
        let dir = try TemporaryDirectory()
        let keys = dir.file("keys")
        let env = ["FBK_PASSPHRASE": "big and long enough"]
        #expect(try CLI.run(["keygen", "--out", keys, "--type", "p384"], environment: env).status == 0)
        let size = 96 << 20
        let fd = open(dir.file("plain"), O_WRONLY | O_CREAT, 0o600)
        var block = [UInt8](repeating: 0, count: 1 << 20)
        for i in 0..<(size >> 20) {
            for j in stride(from: 0, to: block.count, by: 4096) { block[j] = UInt8(truncatingIfNeeded: i &+ j) }
            _ = write(fd, block, block.count)
        }
        close(fd)
        #expect(try opensslEncrypt(["cms", "-encrypt", "-aes-256-gcm"], input: dir.file("plain"),
                                   output: dir.file("obj"), recipient: keys + "/recipient.pem") == 0)
        let timed = try runTool("/usr/bin/time", ["-f", "%M", "-o", dir.file("rss"), CLI.binary.path, "decrypt",
                                                  "--key", keys + "/private.pem", "--out", dir.file("out"), dir.file("obj")],
                                environment: ["FBK_PASSPHRASE": "big and long enough"])
        #expect(timed.status == 0)
        let rssKiB = Int(try String(contentsOfFile: dir.file("rss"), encoding: .utf8)
            .split(separator: "\n").last.map(String.init) ?? "") ?? Int.max
        #expect(rssKiB < 64 << 10, "peak RSS \(rssKiB) KiB for a 96 MiB object")
        #expect(FileManager.default.contents(atPath: dir.file("out")) == FileManager.default.contents(atPath: dir.file("plain")))
    }
}

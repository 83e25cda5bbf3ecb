import Foundation
import Seal
import Testing
@_exported import TestSupport

typealias TempDir = TemporaryDirectory

/// Key pairs made once per test run with the openssl command line, so the
/// tests prove interoperability rather than agreement with themselves.
struct KeyPair: Sendable {
    let name: String
    let certificatePath: String
    let keyPath: String
    var certificate: Certificate { try! Certificate(contentsOf: certificatePath) }
    var key: PrivateKey { try! PrivateKey(contentsOf: keyPath, passphrase: nil) }
}

enum Keys {
    static let directory = try! TempDir()

    static func make(_ name: String, _ newkey: [String]) -> KeyPair {
        let cert = directory.file("\(name).pem"), key = directory.file("\(name).key")
        let r = try! runTool("openssl", ["req", "-x509"] + newkey + ["-nodes", "-keyout", key, "-out", cert,
                                                                    "-days", "30", "-subj", "/CN=fbk-test-\(name)"])
        precondition(r.status == 0, "openssl req failed: \(r.stderr)")
        return KeyPair(name: name, certificatePath: cert, keyPath: key)
    }

    static let rsa = make("rsa3072", ["-newkey", "rsa:3072"])
    static let rsaOther = make("rsa3072b", ["-newkey", "rsa:3072"])
    static let p384 = make("p384", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"])
    static let p256 = make("p256", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
    static let rsaSmall = make("rsa2048", ["-newkey", "rsa:2048"])
    static let ed25519 = make("ed25519", ["-newkey", "ed25519"])
}


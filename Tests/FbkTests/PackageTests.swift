import Foundation
import Testing
import TestSupport

/// The Debian package `make deb` built, installed with apt into a fresh
/// Debian root (debootstrap), used, checked and purged by
/// scripts/package-test.sh. `make test` builds the package and passes it
/// in FBK_DEB (and its version in FBK_DEB_VERSION); a bare `swift test`
/// has no package to try and says so.
@Suite(.serialized, .hangGuard) struct PackageTests {
    static let deb = ProcessInfo.processInfo.environment["FBK_DEB"] ?? ""
    static let version = ProcessInfo.processInfo.environment["FBK_DEB_VERSION"] ?? ""

    @Test(.enabled(if: !PackageTests.deb.isEmpty, "FBK_DEB is unset: run `make test` (or `make package-test`) to build and try the package"))
    func thePackageInstallsWorksAndPurgesCleanly() async throws {
        try #require(FileManager.default.fileExists(atPath: Self.deb), "no package at \(Self.deb)")
        try #require(!Self.version.isEmpty, "FBK_DEB_VERSION is unset")

        // What is inside: the lean binary, the units, man pages, completions.
        let contents = try runTool("dpkg-deb", ["--contents", Self.deb])
        let listing = String(decoding: contents.stdout, as: UTF8.self)
        #expect(contents.status == 0, "\(contents.stderr)")
        let binaryLine = listing.split(separator: "\n").first { $0.hasSuffix(" ./usr/bin/fbk") }
        let binarySize = binaryLine.flatMap { line in line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first.flatMap { Int($0) } }
        let size = try #require(binarySize, "no /usr/bin/fbk in the package")
        #expect(size <= 30_000_000, "the packaged binary is \(size) bytes, over the 30 MB goal")
        for path in ["./lib/systemd/system/fbk-snapshot.timer", "./lib/systemd/system/fbk-check.timer",
                     "./usr/share/man/man1/fbk.1.gz", "./usr/share/man/man1/fbk-snapshot.1.gz",
                     "./usr/share/bash-completion/completions/fbk", "./usr/share/fbk/deploy/nginx/fbk-dav.conf"] {
            #expect(listing.contains(path), "the package lacks \(path)")
        }
        let depends = try runTool("dpkg-deb", ["--field", Self.deb, "Depends", "Version"])
        let fields = String(decoding: depends.stdout, as: UTF8.self)
        for library in ["libssl3", "libzstd1", "libcurl4", "libsqlite3-0", "libyaml-0-2"] {
            #expect(fields.contains(library), "Depends lacks \(library): \(fields)")
        }
        #expect(fields.contains("Version: \(Self.version)"), "\(fields)")

        // Installed into a fresh Debian root, used, and purged.
        // Minutes long: waited for off Swift Testing's pool (runToolOffPool).
        let run = try await runToolOffPool(repositoryRoot + "/scripts/package-test.sh", [Self.deb, Self.version])
        let out = String(decoding: run.stdout, as: UTF8.self)
        let failed = out.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        #expect(run.status == 0 && failed.isEmpty, "package-test failed: \(failed)\n\(out)\n\(run.stderr.suffix(2000))")
        for step in ["ok: apt-get install", "ok: fbk --version: \(Self.version)", "ok: keygen, init, snapshot",
                     "ok: man -w fbk", "ok: systemd-analyze verify: 6 units", "ok: no fbk unit enabled",
                     "ok: fbk enroll, then /usr/share/fbk/deploy/install-client.sh",
                     "ok: apt-get purge fbk", "ok: purge left none"] {
            #expect(out.contains(step), "package-test did not report \"\(step)\": \(out)")
        }
    }
}

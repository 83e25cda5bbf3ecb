// fbk's exit with threads still ending: OpenSSL must not free its global
// state from an atexit handler while a thread that used it frees its own
// (one CI run's restore aborted with a corrupted heap; see Seal's
// OpenSSLLibrary.swift).

import Foundation
import Testing
import TestSupport

@Suite struct ProcessExitTests {
    @Test func openSSLsCleanupDoesNotRunAtExit() throws {
        let dir = try TemporaryDirectory()
        // A stand-in for libcrypto's OPENSSL_cleanup that only leaves a mark,
        // preloaded so that an atexit registration of it reaches this one.
        let source = try dir.write("mark.c", Array("""
            #include <stdio.h>
            #include <stdlib.h>
            void OPENSSL_cleanup(void) {
                const char *p = getenv("FBK_TEST_CLEANUP_MARK");
                FILE *f = p ? fopen(p, "w") : NULL;
                if (f) fclose(f);
            }
            """.utf8))
        let shim = dir.file("mark.so")
        let cc = try runTool("cc", ["-shared", "-fPIC", "-o", shim, source])
        try #require(cc.status == 0, "\(cc.stderr)")
        func marks(_ tool: String, _ arguments: [String]) throws -> Bool {
            let mark = dir.file("mark")
            unlink(mark)
            let r = try runTool(tool, arguments, environment: ["LD_PRELOAD": shim, "FBK_TEST_CLEANUP_MARK": mark,
                                                               "FBK_PASSPHRASE": "fixture passphrase"])
            #expect(r.status == 0, "\(tool): \(r.stderr)")
            return FileManager.default.fileExists(atPath: mark)
        }
        // The openssl command keeps OpenSSL's default: the mark shows the stand-in works.
        #expect(try marks("openssl", ["rand", "-hex", "4"]))
        #expect(try !marks(CLI.binary.path, ["keygen", "--out", dir.file("keys"), "--type", "p384"]))
    }
}

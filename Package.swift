// swift-tools-version:6.1
// fbk: a write-only, content-addressed backup client with offline restore.
//
// The targets are the architecture. On the right, what each builds on
// (and, through those, everything they build on); none imports a target
// listed below it, so there are no cycles. What a sibling target uses is
// `package`, what the command line uses is `public`.
//   Chunker     pure Swift: buzhash content-defined chunking.            (nothing)
//   Seal        compression (libzstd), CMS encryption, hashing (OpenSSL). (C libraries)
//   Platform    errno, descriptors, `*at` paths past PATH_MAX, bounded
//               and durable file I/O, private scratch directories, the
//               bounded work queue, StoreError (what failed, its cause,
//               what to do next).                                         (CLinux)
//   SQLite      the thin SQLite wrapper (statements, transactions).      Platform
//   Format      every object's bytes (FORMAT.md): packs, trees, signed
//               documents, listings, client keys, and ObjectName, which
//               builds and parses every server path.                      Chunker, Seal, Platform
//   Backend     one storage protocol (put create-only, fetch, stat, list)
//               and its implementations: WebDAV and S3 (libcurl), a local
//               directory, memory; retries as a wrapper; storage roots.   Format, Platform, Seal
//   Config      the files an operator writes: fbk.conf, check.conf.       Backend, Format, CYAML
//   Index       the client's SQLite index: chunk → pack and files cache
//               (rebuildable), delivery ledger (durable); index rebuild.  SQLite, Format, Backend
//   Archiver    `fbk snapshot`: walk, chunk, pack, seal, spool, deliver.  Config, Index, Backend
//   Restorer    reading a repository with the operator's key: records,
//               catalogs, listings, packs; restore and verify.           Backend, Format, SQLite
//   Checker     the key-less server check, and mirror-sync.              Backend, Format, Config
//   Pruner      server-side retention: policy, trash, prune.            Checker, Backend, Config, Format
//   Enrollment  a new client's keys and bundle, device entries.          Config, Format, Seal
//   Mount       `fbk mount`: snapshots as a read-only FUSE file system.   Restorer, Format, CFuse
//   fbk         the command-line front end (swift-argument-parser), thin.
// Each C library is one system-library target whose shim.h holds the few
// static-inline wrappers Swift cannot call directly (macros, variadics);
// C types never appear in a public API (libc's `stat` is in Platform's
// package API, for the walkers of Archiver and Restorer).
import PackageDescription

let package = Package(
    name: "fbk",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "fbk", targets: ["fbk"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CFuse", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CLinux"),

        .target(name: "Chunker", exclude: ["README.md"]),
        .target(name: "Seal", dependencies: ["COpenSSL", "CZstd"]),
        .target(name: "Platform", dependencies: ["CLinux"]),
        .target(name: "SQLite", dependencies: ["Platform", "CSQLite"]),
        .target(name: "Format", dependencies: ["Chunker", "Seal", "Platform"]),
        .target(name: "Backend", dependencies: ["Format", "Platform", "Seal", "CCurl"]),
        .target(name: "Config", dependencies: ["Backend", "Format", "Platform", "Seal", "CYAML"]),
        .target(name: "Index", dependencies: ["SQLite", "Format", "Backend", "Platform", "Seal"]),
        .target(name: "Archiver", dependencies: ["Config", "Index", "Backend", "Format", "Platform", "Chunker", "Seal", "CLinux"]),
        .target(name: "Restorer", dependencies: ["Backend", "Format", "SQLite", "Platform", "Seal", "CLinux"]),
        .target(name: "Checker", dependencies: ["Backend", "Format", "Config", "Platform", "Seal"]),
        .target(name: "Pruner", dependencies: ["Checker", "Backend", "Format", "Config", "Platform", "Seal"]),
        .target(name: "Enrollment", dependencies: ["Config", "Format", "Platform", "Seal"]),
        .target(name: "Mount", dependencies: ["Restorer", "Format", "Platform", "Seal", "CFuse"]),
        .executableTarget(
            name: "fbk",
            dependencies: [
                "Chunker", "Seal", "Platform", "Format", "Backend", "Config", "Index", "Archiver", "Restorer",
                "Checker", "Pruner", "Enrollment", "Mount", "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .executableTarget(
            name: "fbk-bench",
            dependencies: ["Chunker", "Seal", "Platform", "SQLite", "Format", "Backend", "Config", "Index", "Archiver", "Restorer", "Checker", "Pruner", "Enrollment"],
            path: "Benchmarks/fbk-bench"
        ),

        .target(name: "TestSupport", dependencies: ["CLinux"], path: "Tests/TestSupport"),
        .testTarget(name: "ChunkerTests", dependencies: ["Chunker"]),
        .testTarget(name: "SealTests", dependencies: ["Seal", "TestSupport"]),
        .testTarget(name: "StoreTests", dependencies: ["Platform", "SQLite", "Format", "Backend", "Config", "Index", "Archiver", "Restorer", "Checker", "Pruner", "Enrollment", "Seal", "Chunker", "TestSupport"]),
        .testTarget(name: "FbkTests", dependencies: ["Chunker", "Seal", "Platform", "SQLite", "Format", "Backend", "Config", "Index", "Archiver", "Restorer", "Checker", "Pruner", "Enrollment", "TestSupport", "CLinux"]),
    ]
)

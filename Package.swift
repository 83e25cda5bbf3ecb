// swift-tools-version:6.1
// fbk: a write-only, content-addressed backup client with offline restore.
//
// The targets are the architecture:
//   Chunker  pure Swift, depends on nothing: buzhash content-defined chunking.
//   Seal     compression (libzstd) and CMS encryption / hashing (OpenSSL).
//   Store    formats, index (SQLite), mirrors (libcurl), archiver, restorer, checker.
//   fbk      the command-line front end (swift-argument-parser), thin.
// Each C library is one system-library target whose shim.h holds the few
// static-inline wrappers Swift cannot call directly (macros, variadics).
import PackageDescription

let package = Package(
    name: "fbk",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "fbk", targets: ["fbk"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLinux"),

        .target(name: "Chunker", exclude: ["README.md"]),
        .target(name: "Seal", dependencies: ["COpenSSL", "CZstd"]),
        .target(name: "Store", dependencies: ["Chunker", "Seal", "CSQLite", "CCurl", "CLinux", "Yams"]),
        .executableTarget(
            name: "fbk",
            dependencies: [
                "Chunker", "Seal", "Store", "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .executableTarget(
            name: "fbk-bench",
            dependencies: ["Chunker", "Seal", "Store"],
            path: "Benchmarks/fbk-bench"
        ),

        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "ChunkerTests", dependencies: ["Chunker"]),
        .testTarget(name: "SealTests", dependencies: ["Seal", "TestSupport"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Seal", "Chunker", "TestSupport"]),
        .testTarget(name: "FbkTests", dependencies: ["Chunker", "Seal", "Store", "TestSupport", "CLinux"]),
    ]
)

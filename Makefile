# fbk: every entry point installs its own system dependencies first
# (scripts/install-deps.sh is the single source of truth for them).

SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
RELEASE_BIN := .build/release
# One version per build (Sources/CLinux/version.h and git): fbk --version,
# --json summaries, the User-Agent and the package all say it.
VERSION := $(shell ./scripts/version.sh)
VERSION_FLAGS := -Xcc '-DFBK_VERSION="$(VERSION)"'
# Full RELRO: the GOT is read-only once the C libraries are bound at start.
HARDENING := -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now
ARCH := $(shell dpkg --print-architecture 2>/dev/null || uname -m)
DEB := .build/deb/fbk_$(VERSION)_$(ARCH).deb

.PHONY: deps build release man deb package-test test demo bench bench-e2e bench-retention crash-test fuzz race clean

deps:
	./scripts/install-deps.sh

build: deps
	$(SWIFT) build

# The binary the fleet runs: the Swift runtime and FoundationEssentials
# linked in, so it needs no Swift on the machine, and its pages are not
# shared-library relocations (about 6 MiB less resident memory per run).
release: deps
	$(SWIFT) build -c release --static-swift-stdlib $(VERSION_FLAGS) $(HARDENING)

# Man pages (one per subcommand) from the argument parser, by
# swift-argument-parser's generate-manual plugin, into .build/man.
man: deps
	./scripts/generate-man.sh .build/man

# The Debian package: the release binary, units, deploy files, man pages,
# completions (scripts/build-deb.sh; packaging/deb).
deb: release man
	./scripts/build-deb.sh $(RELEASE_BIN)/fbk $(VERSION) .build/deb .build/man

# The package installed into a fresh Debian root, checked and purged.
package-test: deb
	./scripts/package-test.sh $(DEB) $(VERSION)

# The whole suite, Swift Testing only, so the closing line counts every
# test; PackageTests installs the package `make deb` built.
test: deps
	$(SWIFT) build --build-tests
	$(MAKE) deb
	FBK_DEB=$(abspath $(DEB)) FBK_DEB_VERSION=$(VERSION) $(SWIFT) test --skip-build --disable-xctest
	./scripts/check-leftovers.sh

# fbk against restic and borg on a generated 1.5 GB tree, then fbk to S3 beside WebDAV (Benchmarks/e2e).
bench-e2e: release
	./scripts/install-deps.sh --bench
	./Benchmarks/e2e/run.sh $(or $(SCALE),1.0)
	./Benchmarks/e2e/s3.sh $(or $(SCALE),1.0)
	./Benchmarks/e2e/browse.sh $(or $(SCALE),1.0)

# The full crash-consistency harness (about 300 MiB, 50 SIGKILLs); `make test` runs a small one.
crash-test: deps
	$(SWIFT) build --build-tests
	FBK_SLOW_TESTS=1 $(SWIFT) test --skip-build --disable-xctest --filter CrashTests

# The parsers of untrusted data under a long mutation run (make test runs a smoke of each).
fuzz: deps
	$(SWIFT) build --build-tests
	FBK_FUZZ_ITERATIONS=2000000 $(SWIFT) test --skip-build --disable-xctest --filter FuzzTests

# The suite under ThreadSanitizer: fails when any fbk it starts reports a
# data race (scripts/race.sh; FILTER narrows it to some suites).
race: deps
	./scripts/race.sh $(FILTER)

# Retention: prune over 10,000 packs and 1,000 snapshots, and the horizon's
# extra upload over 60 simulated days (Benchmarks/README.md, "Retention").
bench-retention: release
	$(RELEASE_BIN)/fbk-bench prune
	./Benchmarks/e2e/horizon.sh $(RELEASE_BIN)/fbk $(or $(SCALE),0.25) 60

demo: release
	./scripts/demo.sh $(RELEASE_BIN)/fbk

bench: release
	./scripts/install-deps.sh --bench
	$(RELEASE_BIN)/fbk-bench all
	./Benchmarks/compare-borg.sh
	./Benchmarks/restore-bench.sh 2

clean:
	rm -rf .build

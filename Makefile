# fbk: every entry point installs its own system dependencies first
# (scripts/install-deps.sh is the single source of truth for them).

SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
RELEASE_BIN := .build/release

.PHONY: deps build release test demo bench bench-e2e bench-retention crash-test fuzz clean

deps:
	./scripts/install-deps.sh

build: deps
	$(SWIFT) build

# The binary the fleet runs: the Swift runtime and Foundation linked in, so
# it needs no Swift on the machine, and its pages are not shared-library
# relocations (about 6 MiB less resident memory per run).
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

# The whole suite, Swift Testing only, so the closing line counts every test.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-xctest
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

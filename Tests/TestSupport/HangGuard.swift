// The one time limit every slow test carries.

// `swift build -c release` (make deb) builds this target too, where the
// Testing module is not offered; only the test targets use the guard.
#if canImport(Testing)
import Testing

extension Trait where Self == TimeLimitTrait {
    /// A guard against a test that hangs, never a measure of speed.
    ///
    /// Swift Testing counts a limit in wall time from the test's start,
    /// including every moment the test waits for a thread of its pool, and
    /// that pool is as wide as the machine has cores: on two cores, tests
    /// that run long on both threads (a tree of 256 MiB chunked, a simulated
    /// year of pruning) hold back every other test, which then resumes
    /// minutes after the work it awaited was done. A tighter limit fails
    /// tests that did nothing wrong; this one still stops a hung test well
    /// inside CI's 90 minutes, where the whole suite takes about 13.
    public static var hangGuard: Self { .timeLimit(.minutes(20)) }
}
#endif

// OpenSSL's process-wide state, kept until the process ends.
//
// By default OpenSSL frees all of its global state from an atexit handler
// (OPENSSL_cleanup). exit() does not wait for other threads, and a thread
// that has used OpenSSL frees its own OpenSSL state as it ends. fbk's
// threads end as the main thread exits: the restoring thread hands its
// result over and then ends, the writers, the prefetcher and the
// compressors end just before. When a thread's cleanup ran beside the
// atexit cleanup, both freed the same memory and the heap was corrupted:
// one CI run's `fbk restore` aborted in glibc's malloc_consolidate, and a C
// program doing the same (threads that used libcrypto ending as main
// exits) aborted or crashed in 5 of 15,000 runs, none of 9,000 with the
// handler left out. The kernel takes back the memory at exit anyway.

internal import COpenSSL

public enum OpenSSLLibrary {
    /// Initializes OpenSSL without its atexit cleanup. Call it first thing
    /// in a program's main, before anything (libcurl included) uses
    /// OpenSSL: the first initialization decides.
    public static func keepStateUntilExit() {
        _ = OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil)
    }
}

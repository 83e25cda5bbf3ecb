// Threads, locks and condition variables on POSIX threads. fbk links
// FoundationEssentials only (Foundation brought ICU's data with it: the
// release binary was 88 MB, 36 MB without), and Thread, NSLock and
// NSCondition live in Foundation proper.

internal import CLinux
import FoundationEssentials
import Glibc

/// A mutual-exclusion lock (a pthread mutex).
package final class Lock: @unchecked Sendable {
    fileprivate let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    package init() { pthread_mutex_init(mutex, nil) }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func lock() { pthread_mutex_lock(mutex) }
    package func unlock() { pthread_mutex_unlock(mutex) }

    package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A lock with a condition variable: `wait` releases the lock until
/// `broadcast` or `signal`, as NSCondition does. Threads that wait for
/// different things can wait on `WaitPoint`s of the same lock instead,
/// so that an event wakes only the threads it concerns: on a virtual
/// machine every needless wake-up is an interrupt to another core.
package final class Condition: @unchecked Sendable {
    private let mutex = Lock()
    /// Where `wait`, `signal` and `broadcast` meet.
    private let main = WaitPoint()

    package init() {}

    package func lock() { mutex.lock() }
    package func unlock() { mutex.unlock() }
    /// Waits for a signal; the caller holds the lock.
    package func wait() { wait(at: main) }
    package func signal() { main.signal() }
    package func broadcast() { main.broadcast() }

    /// A condition variable under this lock.
    package final class WaitPoint: @unchecked Sendable {
        fileprivate let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        package init() { pthread_cond_init(cond, nil) }
        deinit {
            pthread_cond_destroy(cond)
            cond.deallocate()
        }
        /// Wakes one thread waiting here (none waiting: nothing happens).
        package func signal() { pthread_cond_signal(cond) }
        /// Wakes every thread waiting here.
        package func broadcast() { pthread_cond_broadcast(cond) }
    }

    /// Waits at `point` for its signal; the caller holds the lock.
    package func wait(at point: WaitPoint) { pthread_cond_wait(point.cond, mutex.mutex) }

    package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// Starting detached threads.
package enum Threads {
    /// Runs `body` on a new detached thread.
    /// - Parameters:
    ///   - name: shown by `top -H` and in core dumps (at most 15 bytes are kept).
    ///   - stackSize: bytes of address space for its stack (only pages used are committed); nil for the default.
    package static func start(name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Body(name: name, body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
        var thread = pthread_t()
        let status = pthread_create(&thread, &attributes, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            _ = CLinux_set_thread_name(String(decoding: body.name.utf8.prefix(15), as: UTF8.self))
            body.run()
            return nil
        }, box)
        if status != 0 {
            // No thread could be made (EAGAIN: the process's limit): fail here
            // rather than wait for ever for work that never starts.
            fatalError("cannot start thread \(name): \(String(cString: strerror(status)))")
        }
    }

    private final class Body {
        let name: String
        let run: @Sendable () -> Void
        init(name: String, _ run: @escaping @Sendable () -> Void) {
            self.name = name
            self.run = run
        }
    }

    /// Sleeps this thread for `seconds`.
    package static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

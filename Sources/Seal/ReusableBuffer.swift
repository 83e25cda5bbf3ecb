// Memory kept between uses by one thread: a restore's writers read and
// decompress every chunk into the same two of these instead of allocating
// per chunk, which in glibc's per-thread arenas meant fresh pages faulted
// in (and zero-filled by the kernel) for each one.

/// Bytes grown to the size asked for, never zero-filled: a caller uses
/// only what it has written. More than `keep` bytes are held only while a
/// request that large is in use, so that a rare 8 MiB chunk does not stay
/// resident for the rest of a run. Not thread-safe; one per thread.
package final class ReusableBuffer {
    private var storage = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private let keep: Int

    package init(keep: Int = 2 << 20) { self.keep = keep }

    deinit { storage.deallocate() }

    /// The first `count` bytes, valid until the next call.
    package func bytes(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if storage.count < count || storage.count > max(count, keep) {
            storage.deallocate()
            storage = .allocate(byteCount: max(count, min(keep, storage.count)), alignment: 16)
        }
        return UnsafeMutableRawBufferPointer(rebasing: storage[..<count])
    }
}

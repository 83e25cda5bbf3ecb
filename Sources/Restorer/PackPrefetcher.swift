// Decrypts the packs a restore needs ahead of the thread that writes their
// chunks, so fetching and decryption overlap decompression, verification
// and writing. At most `ahead` decrypted packs wait in the work directory.

import Foundation
import Backend
import Format
import SQLite
import Platform
import Seal

final class PackPrefetcher: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [String: Result<Repository.OpenedPack, StoreError>] = [:]
    private var stopping = false
    private var finished = false

    /// Starts opening `packs`, in that order, on a thread of its own.
    init(repository: Repository, packs: [String], ahead: Int) {
        nonisolated(unsafe) let repository = repository
        let thread = Thread { [self] in
            for pack in packs {
                let go = condition.withLock {
                    while ready.count >= ahead && !stopping { condition.wait() }
                    return !stopping
                }
                guard go else { break }
                // `openPack` touches only the repository's immutable parts and its work directory.
                let opened = repository.openPack(pack)
                condition.withLock {
                    ready[pack] = opened
                    condition.broadcast()
                }
            }
            condition.withLock {
                finished = true
                condition.broadcast()
            }
        }
        thread.name = "fbk-prefetch"
        thread.start()
    }

    /// The opened pack (waits for it). Each pack is taken once, in order.
    func take(_ pack: String) -> Result<Repository.OpenedPack, StoreError> {
        condition.withLock {
            while ready[pack] == nil && !finished { condition.wait() }
            defer { condition.broadcast() }
            return ready.removeValue(forKey: pack) ?? .failure(StoreError(.integrity, "\(pack) was not prefetched"))
        }
    }

    /// Stops the thread and removes packs it opened that were never taken.
    func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
            while !finished { condition.wait() }
            for case .success(let o) in ready.values { unlink(o.path) }
            ready.removeAll()
        }
    }
}

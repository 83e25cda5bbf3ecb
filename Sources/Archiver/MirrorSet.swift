// All configured mirrors of a run: uploads each object to every mirror at
// once, remembers which mirrors failed so the rest of the run does not wait
// on them again, and counts what each mirror received.

import Dispatch
import Foundation
import Config
import Index
import Backend
import Format
import Platform
import Chunker
import Seal

/// The configured mirrors, with their index IDs and this run's health.
final class MirrorSet: @unchecked Sendable {
    let mirrors: [any Mirror]
    let ids: [Int]
    private let lock = NSLock()
    /// Mirrors that failed in this run, with the reason; skipped from then on.
    private(set) var down: [Int: MirrorFailure] = [:]
    private(set) var uploadedBytes: [Int: Int] = [:]
    private(set) var uploadedObjects: [Int: Int] = [:]

    init(mirrors: [any Mirror], ids: [Int]) {
        self.mirrors = mirrors
        self.ids = ids
    }

    func url(of id: Int) -> String { mirrors[ids.firstIndex(of: id)!].url }

    var failures: [MirrorFailure] { lock.withLock { Array(down.values) } }

    /// Uploads a local file to the mirrors in `targets` (default: all not
    /// down), concurrently. Returns the IDs of the mirrors that now hold it.
    func deliver(_ relativePath: String, from file: String, size: Int, to targets: [Int]? = nil) -> [Int] {
        let wanted = (targets ?? ids).filter { id in lock.withLock { down[id] == nil } }
        let box = ResultBox(count: wanted.count)
        DispatchQueue.concurrentPerform(iterations: wanted.count) { i in
            let id = wanted[i]
            let mirror = mirrors[ids.firstIndex(of: id)!]
            do throws(MirrorFailure) {
                let outcome = try mirror.put(relativePath, from: file, size: size)
                box.set(i, id)
                if outcome == .stored {
                    lock.withLock {
                        uploadedBytes[id, default: 0] += size
                        uploadedObjects[id, default: 0] += 1
                    }
                }
            } catch {
                lock.withLock { down[id] = error }
            }
        }
        return box.values.compactMap { $0 }
    }

    private final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var values: [Int?]
        init(count: Int) { values = [Int?](repeating: nil, count: count) }
        func set(_ i: Int, _ v: Int) { lock.withLock { values[i] = v } }
    }
}

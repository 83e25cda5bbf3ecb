// All configured mirrors of a run: uploads each object to every mirror at
// once, remembers which mirrors failed so the rest of the run does not wait
// on them again, and counts what each mirror received.

import Backend
import Dispatch
import FoundationEssentials
import Glibc
import Index
import Platform

/// The configured mirrors, with their index IDs and this run's health.
final class MirrorSet: @unchecked Sendable {
    struct Member {
        let id: MirrorID
        let backend: any Backend
    }

    let members: [Member]
    /// Guards the three below: uploads change them on Dispatch's threads
    /// while the archiving thread reports progress. A Swift dictionary read
    /// while another thread grows it can free storage under the reader.
    private let lock = Lock()
    /// Mirrors that failed in this run, with the reason; skipped from then on.
    private var down: [MirrorID: BackendError] = [:]
    private var uploadedBytes: [MirrorID: Int] = [:]
    private var uploadedObjects: [MirrorID: Int] = [:]

    init(_ members: [Member]) {
        self.members = members
    }

    var ids: [MirrorID] { members.map(\.id) }

    func url(of id: MirrorID) -> String { members.first { $0.id == id }?.backend.location ?? "mirror \(id)" }

    var failures: [BackendError] { lock.withLock { Array(down.values) } }

    /// What mirror `id` received in this run so far.
    func uploaded(_ id: MirrorID) -> (bytes: Int, objects: Int) {
        lock.withLock { (uploadedBytes[id] ?? 0, uploadedObjects[id] ?? 0) }
    }

    /// The bytes the mirror that received most in this run received so far.
    var mostUploadedBytes: Int { lock.withLock { uploadedBytes.values.max() ?? 0 } }

    /// Uploads a local file to the mirrors in `targets` (default: all not
    /// down), concurrently. Returns the IDs of the mirrors that now hold it.
    func deliver(_ path: String, from file: String, size: Int, to targets: [MirrorID]? = nil) -> [MirrorID] {
        let wanted = members.filter { m in (targets?.contains(m.id) ?? true) && lock.withLock { down[m.id] == nil } }
        let box = Slots<MirrorID>(count: wanted.count)
        DispatchQueue.concurrentPerform(iterations: wanted.count) { i in
            let member = wanted[i]
            do throws(BackendError) {
                let outcome = try member.backend.put(path, from: file, size: size)
                box.set(i, member.id)
                if outcome == .stored {
                    lock.withLock {
                        uploadedBytes[member.id, default: 0] += size
                        uploadedObjects[member.id, default: 0] += 1
                    }
                }
            } catch {
                lock.withLock { down[member.id] = error }
            }
        }
        return box.values.compactMap { $0 }
    }

    /// Each mirror's clock, asked at once. A mirror that gives no answer
    /// at all is down for the rest of the run, as after a failed upload:
    /// it is not kept waiting on again, and what it lacks is spooled.
    func serverTimes() -> [Date] {
        let box = Slots<Date>(count: members.count)
        DispatchQueue.concurrentPerform(iterations: members.count) { i in
            do throws(BackendError) {
                box.set(i, try members[i].backend.serverTime())
            } catch {
                lock.withLock { down[members[i].id] = error }
            }
        }
        return box.values.compactMap { $0 }
    }

    /// One result per mirror, filled in from concurrent work.
    private final class Slots<Value>: @unchecked Sendable {
        private let lock = Lock()
        private(set) var values: [Value?]
        init(count: Int) { values = [Value?](repeating: nil, count: count) }
        func set(_ i: Int, _ v: Value?) { lock.withLock { values[i] = v } }
    }
}

// Work handed from one thread to several: first in, first out, with the
// memory in flight bounded. A job's cost (its bytes) is reserved when it
// is queued and given back by `release` when its memory is freed, which
// may be long after it left the queue (a compressed chunk waits for its
// pack). One job always fits when nothing is reserved, so the largest
// chunk never waits for ever.
//
// Producers wait for room and consumers for work at two wait points of
// one lock: a job queued wakes one consumer, memory given back wakes the
// producers only. (One condition for both woke every idle worker for
// every chunk written, and a first snapshot of 30,000 small files spent
// about a sixth of its CPU time waking threads that went back to sleep.)

import FoundationEssentials
import Glibc

package final class WorkQueue<Job>: @unchecked Sendable {
    private let condition = Condition()
    /// Consumers wait here for a job.
    private let work = Condition.WaitPoint()
    /// Producers wait here for room.
    private let room = Condition.WaitPoint()
    /// Queued jobs from `head` on; taken slots are emptied at once so their memory is freed.
    private var jobs: [Job?] = []
    private var head = 0
    private var reserved = 0
    private let capacity: Int
    private var closed = false
    private var stopped = false

    /// - Parameter capacity: the most cost reserved at once (bytes).
    package init(capacity: Int) { self.capacity = capacity }

    /// Queues the job `make` gives, once `cost` fits. `make` runs only
    /// then, so a job waiting for room holds no memory yet.
    /// - Returns: false (and `make` is not called) once the queue is stopped or closed.
    @discardableResult
    package func push(cost: Int, _ make: () throws -> Job) rethrows -> Bool {
        try condition.withLock {
            while !stopped && !closed && reserved > 0 && reserved + cost > capacity { condition.wait(at: room) }
            guard !stopped && !closed else { return false }
            jobs.append(try make())
            reserved += cost
            work.signal()
            return true
        }
    }

    /// The next job; waits for one. Nil once the queue is stopped, or
    /// closed with nothing left in it.
    package func pop() -> Job? {
        condition.withLock {
            while head == jobs.count && !closed && !stopped { condition.wait(at: work) }
            guard !stopped, head < jobs.count else { return nil }
            let job = jobs[head].take()
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1024 {
                jobs.removeFirst(head)
                head = 0
            }
            return job
        }
    }

    /// Gives back the cost of a job whose memory is freed.
    package func release(_ cost: Int) {
        condition.withLock {
            reserved -= cost
            room.broadcast()
        }
    }

    /// No more jobs: `pop` hands out what is queued, then nil.
    package func close() {
        condition.withLock {
            closed = true
            work.broadcast()
            room.broadcast()
        }
    }

    /// Stop now: `pop` returns nil at once, `push` refuses, queued jobs are dropped.
    package func stop() {
        condition.withLock {
            stopped = true
            jobs.removeAll()
            head = 0
            work.broadcast()
            room.broadcast()
        }
    }
}

import Foundation
import Platform
import Testing
import TestSupport

/// The one work queue the pack pipeline and the restore writers share.
@Suite struct WorkQueueTests {
    @Test func aPushWaitsUntilItsCostFits() throws {
        let queue = WorkQueue<Int>(capacity: 10)
        #expect(queue.push(cost: 6) { 1 })
        let pushed = DispatchSemaphore(value: 0)
        Thread { queue.push(cost: 6) { 2 }; pushed.signal() }.start()
        #expect(pushed.wait(timeout: .now() + 0.3) == .timedOut, "6 + 6 is over 10: the second push waits")
        #expect(queue.pop() == 1)
        #expect(pushed.wait(timeout: .now() + 0.3) == .timedOut, "taken from the queue is not released: the memory is still held")
        queue.release(6)
        #expect(pushed.wait(timeout: .now() + 10) == .success)
        #expect(queue.pop() == 2)
    }

    @Test func oneJobAlwaysFitsAnEmptyQueue() {
        let queue = WorkQueue<String>(capacity: 10)
        #expect(queue.push(cost: 1_000) { "the largest chunk" })
        #expect(queue.pop() == "the largest chunk")
    }

    @Test func closingHandsOutWhatIsQueuedThenNothing() {
        let queue = WorkQueue<Int>(capacity: 100)
        for i in 0..<3 { queue.push(cost: 1) { i } }
        queue.close()
        #expect(!queue.push(cost: 1) { 99 })
        #expect([queue.pop(), queue.pop(), queue.pop(), queue.pop()] == [0, 1, 2, nil])
    }

    @Test func stoppingDropsTheQueueAndWakesEveryone() {
        let queue = WorkQueue<Int>(capacity: 1)
        queue.push(cost: 1) { 0 }
        let done = DispatchSemaphore(value: 0)
        let made = Counter()
        Thread {
            let queued = queue.push(cost: 1) { made.add(); return 1 }
            #expect(!queued)
            done.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.1)
        queue.stop()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(made.value == 0, "a refused job is never made")
        #expect(queue.pop() == nil)
    }
}

extension WorkQueueTests {
    /// A queued job wakes one consumer and given-back memory wakes the
    /// producer only: with a small capacity, every job still reaches
    /// exactly one consumer and nobody sleeps through the last one.
    /// (Every job is a hand-over between threads; on two cores busy with
    /// the rest of the suite each can wait a scheduler tick, so the count
    /// is kept modest and the limit generous.)
    @Test(.hangGuard) func everyJobReachesOneConsumerWhenWakeUpsAreSingle() {
        let queue = WorkQueue<Int>(capacity: 8)
        let taken = Tally()
        let consumers = DispatchGroup()
        for _ in 0..<3 {
            consumers.enter()
            Thread {
                while let job = queue.pop() {
                    taken.add(job)
                    queue.release(1 + job % 3)
                }
                consumers.leave()
            }.start()
        }
        for i in 0..<2_000 { queue.push(cost: 1 + i % 3) { i } }
        queue.close()
        #expect(consumers.wait(timeout: .now() + 280) == .success)
        #expect(taken.sorted() == Array(0..<2_000))
    }
}

final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int] = []
    func add(_ v: Int) { lock.withLock { values.append(v) } }
    func sorted() -> [Int] { lock.withLock { values.sorted() } }
}

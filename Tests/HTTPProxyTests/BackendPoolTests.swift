import HTTPProxy
import Testing

/// Balancing and health with an injected clock.
@Suite struct BackendPoolTests {
    @Test func roundRobinTakesTurns() {
        var pool = BackendPool(backends: 3, policy: .roundRobin)
        #expect((0..<7).compactMap { _ in pool.pick(now: 0) } == [0, 1, 2, 0, 1, 2, 0])
    }

    @Test func leastConnectionsPrefersTheIdleBackend() {
        var pool = BackendPool(backends: 2, policy: .leastConnections)
        let first = pool.pick(now: 0)
        #expect(first == 0)
        pool.started(0)
        #expect(pool.pick(now: 0) == 1)
        pool.started(1)
        pool.started(1)
        #expect(pool.pick(now: 0) == 0)
        pool.finished(1)
        pool.finished(1)
        pool.finished(0)
        // Equal again: ties share the load round the ring.
        #expect(Set((0..<4).compactMap { _ in pool.pick(now: 0) }) == [0, 1])
    }

    @Test func firstAvailableStaysOnTheFirstUntilItFails() {
        var pool = BackendPool(backends: 2, policy: .firstAvailable, failureThreshold: 1)
        #expect(pool.pick(now: 0) == 0 && pool.pick(now: 0) == 0)
        pool.failed(0, now: 0)
        #expect(pool.pick(now: 10) == 1)
        #expect(pool.pick(now: 1000) == 0, "back after its down interval")
    }

    @Test func consecutiveFailuresTakeABackendDownForAGrowingInterval() {
        var pool = BackendPool(backends: 2, policy: .roundRobin, failureThreshold: 2, firstDownInterval: 1000)
        pool.failed(0, now: 0)
        #expect(pool.health[0].isUp(at: 0), "one failure is not enough")
        pool.failed(0, now: 0)
        #expect(!pool.health[0].isUp(at: 999) && pool.health[0].isUp(at: 1000))
        pool.failed(0, now: 1000)
        #expect(
            !pool.health[0].isUp(at: 2999) && pool.health[0].isUp(at: 3000), "the second outage lasts twice as long")
        pool.succeeded(0)
        pool.failed(0, now: 5000)
        pool.failed(0, now: 5000)
        #expect(pool.health[0].isUp(at: 6000), "a success resets the interval")
    }

    @Test func retriesSkipTriedBackendsAndAllDownMeans502() {
        var pool = BackendPool(backends: 2, policy: .roundRobin, failureThreshold: 1)
        let first = pool.pick(now: 0) ?? -1
        #expect(pool.pick(now: 0, excluding: [first]) == 1 - first)
        #expect(pool.pick(now: 0, excluding: [0, 1]) == nil)
        pool.failed(0, now: 0)
        pool.failed(1, now: 0)
        #expect(pool.pick(now: 10) == nil)
    }

    @Test func activeChecksTakeBackendsOutAndBringThemBack() {
        var pool = BackendPool(backends: 2, policy: .roundRobin)
        pool.checked(1, passed: false)
        #expect((0..<4).compactMap { _ in pool.pick(now: 0) } == [0, 0, 0, 0])
        pool.checked(1, passed: true)
        #expect(Set((0..<4).compactMap { _ in pool.pick(now: 0) }) == [0, 1])
    }
}

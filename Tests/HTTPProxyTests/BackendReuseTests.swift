import HTTPProxy
import Testing

/// The keep-alive policy for backend connections: park briefly, then pool, bounded.
@Suite struct BackendReuseTests {
    @Test(arguments: [
        (true, false, false, false, BackendReuse.Placement.park),
        (true, true, false, false, .pool),
        (true, false, true, false, .pool),
        (true, false, false, true, .close),
        (false, false, false, false, .close),
        (false, true, true, false, .close),
    ])
    func whereAFinishedConnectionGoes(
        reusable: Bool, clientClosing: Bool, clientHasParked: Bool, draining: Bool, placement: BackendReuse.Placement
    ) {
        let policy = BackendReuse()
        #expect(
            policy.placement(
                reusable: reusable, clientClosing: clientClosing, clientHasParked: clientHasParked, draining: draining)
                == placement)
    }

    @Test(.bug(id: "13")) func parkingIsShortAndThePoolIsBounded() {
        let policy = BackendReuse(maximumIdle: 64, parkGrace: 1000)
        #expect(!policy.parkExpired(since: 5000, now: 5999))
        #expect(policy.parkExpired(since: 5000, now: 6000), "an idle client keeps its backend a second, not for ever")
        #expect(policy.poolAccepts(idle: 63, draining: false))
        #expect(!policy.poolAccepts(idle: 64, draining: false))
        #expect(!policy.poolAccepts(idle: 0, draining: true))
        #expect(BackendReuse(maximumIdle: 10_000).maximumIdle == 256, "never more than 256 per backend per worker")
        #expect(!policy.idleExpired(since: 0, now: 29_999) && policy.idleExpired(since: 0, now: 30_000))
    }

    /// 3,000 clients, each finishing a request and then idling: with the policy applied as the worker does
    /// (park; move to the pool when the grace passed; close what the pool does not take), the connections
    /// held after the grace are the pool's bound, not one per client.
    @Test(.bug(id: "13")) func idleClientsHoldNoMoreThanThePool() {
        let policy = BackendReuse(maximumIdle: 64, parkGrace: 1000)
        var parked: [UInt64] = []
        var pooled = 0
        for client in 0..<3000 {
            let now = UInt64(client / 10)
            switch policy.placement(reusable: true, clientClosing: false, clientHasParked: false, draining: false) {
            case .park: parked.append(now)
            case .pool: if policy.poolAccepts(idle: pooled, draining: false) { pooled += 1 }
            case .close: break
            }
        }
        let later: UInt64 = 2000
        for since in parked where policy.parkExpired(since: since, now: later) {
            if policy.poolAccepts(idle: pooled, draining: false) { pooled += 1 }
        }
        parked.removeAll { policy.parkExpired(since: $0, now: later) }
        #expect(parked.isEmpty && pooled == 64)
    }
}

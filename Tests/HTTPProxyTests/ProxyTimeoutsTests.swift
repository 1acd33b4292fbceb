import HTTPProxy
import Testing

/// Every timeout of the proxy loop from one rule: which limit a phase has, and what restarts the clock.
@Suite struct ProxyTimeoutsTests {
    static let timeouts = ProxyTimeouts()

    @Test(arguments: [
        (ProxySession.Phase.idle, UInt64(60_000)), (.readingHead, 10_000), (.connecting, 5_000),
        (.awaitingResponse, 60_000), (.streaming, 60_000), (.closing, 60_000), (.tunnel, 600_000),
    ])
    func aNewPhaseStartsItsOwnClock(phase: ProxySession.Phase, limit: UInt64) {
        #expect(
            Self.timeouts.deadline(after: .phaseChanged, phase: phase, tunnel: false, now: 1000, current: 5)
                == 1000 + limit)
    }

    @Test func activityExtendsOnlyResponsesAndTunnels() {
        let timeouts = Self.timeouts
        #expect(timeouts.deadline(after: .activity, phase: .streaming, tunnel: false, now: 50, current: 7) == 60_050)
        #expect(
            timeouts.deadline(after: .activity, phase: .awaitingResponse, tunnel: false, now: 50, current: 7)
                == 60_050)
        #expect(
            timeouts.deadline(after: .activity, phase: .readingHead, tunnel: false, now: 50, current: 7) == 7,
            "a head trickled byte by byte keeps its first deadline (slowloris)")
        #expect(timeouts.deadline(after: .activity, phase: .idle, tunnel: false, now: 50, current: 7) == 7)
        #expect(
            timeouts.deadline(after: .activity, phase: .streaming, tunnel: true, now: 50, current: 7) == 600_050,
            "a tunnel is idle only when nothing moves")
    }
}

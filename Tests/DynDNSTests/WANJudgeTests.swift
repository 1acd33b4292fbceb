import DynDNS
import Testing
import ZoneModel

/// The judgement with injected observations and clock: flapping, disagreement, CGNAT, timeouts.
@Suite struct WANJudgeTests {
    static func seen(_ pairs: (String, String?)...) -> [WANObservation] {
        pairs.map { source, address in
            WANObservation(
                source: source,
                result: address.map { .success(IPAddress($0)!) } ?? .failure(DetectError("timed out after 2 s")))
        }
    }

    @Test func firstAddressAtOnceThenChangesOnlyWhenTheyHold() {
        var judge = WANJudge(policy: .firstAnswer, confirmation: 60_000)
        #expect(judge.judge(Self.seen(("natpmp", "8.8.4.4")), now: 0) == .publish(IPAddress("8.8.4.4")!))
        #expect(judge.judge(Self.seen(("natpmp", "8.8.4.4")), now: 10_000) == .unchanged)
        // A new address must hold for the confirmation time.
        #expect(judge.judge(Self.seen(("natpmp", "9.9.9.9")), now: 20_000) == .pending(IPAddress("9.9.9.9")!))
        #expect(judge.judge(Self.seen(("natpmp", "9.9.9.9")), now: 50_000) == .pending(IPAddress("9.9.9.9")!))
        #expect(judge.judge(Self.seen(("natpmp", "9.9.9.9")), now: 80_000) == .publish(IPAddress("9.9.9.9")!))
        #expect(judge.published == IPAddress("9.9.9.9")!)
    }

    /// A lost address is kept through the grace period, then withdrawn once; a source answering again starts
    /// over (published at once); an answer inside the grace period resets it.
    @Test(.bug(id: "19")) func aLostAddressIsKeptForTheGracePeriodThenWithdrawn() {
        var judge = WANJudge(policy: .firstAnswer, confirmation: 60_000)
        judge.grace = 600_000
        let address = IPAddress("8.8.4.4")!
        #expect(judge.judge(Self.seen(("natpmp", "8.8.4.4")), now: 0) == .publish(address))
        #expect(judge.judge(Self.seen(("natpmp", nil)), now: 100_000) == .noAddress("natpmp: timed out after 2 s"))
        #expect(judge.lostSince == 100_000 && judge.published == address)
        // Back inside the grace period: the clock starts again.
        #expect(judge.judge(Self.seen(("natpmp", "8.8.4.4")), now: 500_000) == .unchanged)
        #expect(judge.lostSince == nil)
        #expect(judge.judge(Self.seen(("natpmp", "100.64.1.2")), now: 600_000) != .unchanged)
        #expect(judge.judge(Self.seen(("natpmp", nil)), now: 1_000_000) == .noAddress("natpmp: timed out after 2 s"))
        #expect(
            judge.judge(Self.seen(("natpmp", nil)), now: 1_200_000)
                == .withdraw(address, "natpmp: timed out after 2 s"))
        #expect(judge.published == nil)
        // Withdrawn once; then nothing to keep.
        #expect(judge.judge(Self.seen(("natpmp", nil)), now: 1_300_000) == .noAddress("natpmp: timed out after 2 s"))
        // A source answers again: published at once, as a first address.
        #expect(judge.judge(Self.seen(("natpmp", "8.8.4.4")), now: 1_400_000) == .publish(address))
        // Without a grace period (wan grace forever): kept for ever.
        var forever = WANJudge(policy: .firstAnswer, confirmation: 60_000, published: address)
        #expect(forever.judge(Self.seen(("natpmp", nil)), now: 0) == .noAddress("natpmp: timed out after 2 s"))
        #expect(
            forever.judge(Self.seen(("natpmp", nil)), now: 100 * 86_400_000)
                == .noAddress("natpmp: timed out after 2 s"))
        #expect(forever.published == address)
    }

    @Test func flappingNeverPublishes() {
        var judge = WANJudge(policy: .firstAnswer, confirmation: 30_000, published: IPAddress("8.8.4.4")!)
        var now: UInt64 = 0
        for round in 0..<20 {
            let address = round % 2 == 0 ? "9.9.9.9" : "8.8.4.4"
            let decision = judge.judge(Self.seen(("http", address)), now: now)
            #expect(decision == .unchanged || decision == .pending(IPAddress("9.9.9.9")!))
            now += 20_000
        }
        #expect(judge.published == IPAddress("8.8.4.4")!)
        // A candidate that changes restarts the clock.
        #expect(judge.judge(Self.seen(("http", "1.1.1.1")), now: 1_000_000) == .pending(IPAddress("1.1.1.1")!))
        #expect(judge.judge(Self.seen(("http", "1.0.0.1")), now: 1_040_000) == .pending(IPAddress("1.0.0.1")!))
        #expect(judge.judge(Self.seen(("http", "1.0.0.1")), now: 1_060_000) == .pending(IPAddress("1.0.0.1")!))
        #expect(judge.judge(Self.seen(("http", "1.0.0.1")), now: 1_070_000) == .publish(IPAddress("1.0.0.1")!))
    }

    @Test func agreementPolicy() {
        var judge = WANJudge(policy: .agreement(2), confirmation: 0)
        let split = judge.judge(Self.seen(("dns", "8.8.4.4"), ("http", "9.9.9.9"), ("natpmp", nil)), now: 0)
        #expect(split == .noAddress("sources disagree (2 must agree): dns says 8.8.4.4, http says 9.9.9.9"))
        #expect(
            judge.judge(Self.seen(("dns", "8.8.4.4"), ("http", "9.9.9.9"), ("natpmp", "9.9.9.9")), now: 1)
                == .publish(IPAddress("9.9.9.9")!))
        // First-answer skips sources that failed.
        var first = WANJudge(policy: .firstAnswer, confirmation: 0)
        #expect(first.judge(Self.seen(("natpmp", nil), ("http", "9.9.9.9")), now: 0) == .publish(IPAddress("9.9.9.9")!))
    }

    @Test func carrierGradeNATAndPrivateAnswersAreExplainedNotPublished() {
        var judge = WANJudge(policy: .firstAnswer, confirmation: 0)
        let decision = judge.judge(Self.seen(("natpmp", "100.64.12.34"), ("interface", "192.168.1.20")), now: 0)
        guard case .noAddress(let reason) = decision else {
            Issue.record("expected noAddress, got \(decision)")
            return
        }
        #expect(reason.contains("carrier-grade NAT"))
        #expect(reason.contains("port forwarding cannot reach"))
        #expect(reason.contains("private address"))
        #expect(judge.published == nil)
        // Timeouts are reported by source.
        #expect(judge.judge(Self.seen(("natpmp", nil)), now: 1) == .noAddress("natpmp: timed out after 2 s"))
        // Documentation addresses only in test networks.
        #expect(judge.judge(Self.seen(("natpmp", "203.0.113.1")), now: 2) != .publish(IPAddress("203.0.113.1")!))
        var test = WANJudge(policy: .firstAnswer, confirmation: 0, acceptDocumentation: true)
        #expect(test.judge(Self.seen(("natpmp", "203.0.113.1")), now: 2) == .publish(IPAddress("203.0.113.1")!))
    }

    @Test func addressScopes() {
        #expect(IPAddress("8.8.8.8")!.scope == .global)
        #expect(IPAddress("100.64.0.1")!.scope == .carrierGradeNAT)
        #expect(IPAddress("100.127.255.255")!.scope == .carrierGradeNAT)
        #expect(IPAddress("100.128.0.1")!.scope == .global)
        #expect(IPAddress("10.1.2.3")!.scope == .privateNetwork)
        #expect(IPAddress("172.31.0.1")!.scope == .privateNetwork)
        #expect(IPAddress("172.32.0.1")!.scope == .global)
        #expect(IPAddress("127.0.0.1")!.scope == .special)
        #expect(IPAddress("169.254.1.1")!.scope == .special)
        #expect(IPAddress("224.0.0.1")!.scope == .special)
        #expect(IPAddress("2606:4700::1111")!.scope == .global)
        #expect(IPAddress("fd00::1")!.scope == .privateNetwork)
        #expect(IPAddress("fe80::1")!.scope == .special)
        #expect(IPAddress("2001:db8::1")!.scope == .documentation)
    }

    @Test func pollsAreJittered() {
        let times = (0..<50).map { WANJudge.nextPoll(after: 1000, interval: 300_000, random: UInt32($0 * 7919)) }
        #expect(times.allSatisfy { $0 >= 1000 + 270_000 && $0 < 1000 + 330_000 })
        #expect(Set(times).count > 10)
    }
}

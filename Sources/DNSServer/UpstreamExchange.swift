import DNSWire
import ZoneModel

/// One forwarded question's conversation with the upstream resolvers: which upstream to ask next, over
/// which transport, with which ID, and when to give up.
///
/// Pure: the I/O layer feeds it events (the reply's bytes, a transport error, a timer) and performs the
/// action it returns. Its budget is explicit so that no upstream behaviour can make one client question
/// cost more than `packetBudget` upstream packets: each upstream gets at most `triesPerUpstream` UDP
/// tries, an upstream that answers SERVFAIL, REFUSED, NOTIMP or any other failure code is not asked again
/// for this question, a hard transport error (ICMP unreachable, a refused TCP connection) counts as a try
/// that got no answer, and a truncated reply costs one TCP query to the same upstream.
public struct UpstreamExchange: Sendable {
    public enum Transport: Sendable, Equatable {
        case udp
        case tcp
    }

    public enum Action: Sendable, Equatable {
        /// Send the question to upstream `upstream` (an index into the configured list) with `id`,
        /// replacing any socket of the previous attempt; the attempt ends at `attemptDeadline`.
        case send(upstream: Int, transport: Transport, id: UInt16)
        /// Nothing to do: keep waiting for the attempt's reply or its timer.
        case wait
        /// Answer the waiters with this reply (already scrubbed) and cache it.
        case answer(DNSMessage)
        /// Answer the waiters SERVFAIL: every upstream failed, the budget is spent, or the deadline passed.
        case fail
    }

    /// How often one upstream is asked over UDP for one question (a lost datagram deserves a second try).
    public static let triesPerUpstream = 2

    /// The most upstream queries one question may cause with `upstreams` upstreams.
    public static func packetBudget(upstreams: Int) -> Int { 2 * upstreams + 1 }

    public let question: CacheKey
    public let upstreamCount: Int
    /// When the whole question fails, and how long one UDP attempt may take (TCP gets twice as long).
    public let deadline: UInt64
    public let attemptMilliseconds: UInt64
    /// The upstream, transport and ID of the attempt in flight.
    public private(set) var upstream: Int
    public private(set) var transport = Transport.udp
    public private(set) var id: UInt16 = 0
    public private(set) var attemptDeadline: UInt64 = 0
    public private(set) var packetsSent = 0
    /// Whether the exchange has answered or failed; every later event is ignored.
    public private(set) var isFinished = false
    var tries: [Int]
    /// Upstreams that answered this question with a failure code.
    var refused: [Bool]
    var random: UInt64

    /// A question for `upstreamCount` upstreams, first asking the one `seed` picks; `seed` also draws
    /// the query IDs (the I/O layer passes a random number, tests a fixed one).
    public init(
        question: CacheKey, upstreamCount: Int, now: UInt64, deadlineMilliseconds: UInt64,
        attemptMilliseconds: UInt64, seed: UInt64
    ) {
        self.question = question
        self.upstreamCount = upstreamCount
        self.deadline = now + deadlineMilliseconds
        self.attemptMilliseconds = attemptMilliseconds
        self.tries = Array(repeating: 0, count: upstreamCount)
        self.refused = Array(repeating: false, count: upstreamCount)
        self.random = seed
        self.upstream = upstreamCount > 0 ? Int(UpstreamExchange.mix(&self.random) % UInt64(upstreamCount)) : 0
    }

    /// The first query.
    public mutating func start(now: UInt64) -> Action {
        guard self.upstreamCount > 0 else { return self.finish(.fail) }
        return self.send(to: self.upstream, over: .udp, now: now)
    }

    /// A reply arrived on the attempt's socket (for TCP: one whole message without its length prefix).
    public mutating func received(_ bytes: [UInt8], now: UInt64) -> Action {
        guard !self.isFinished else { return .wait }
        guard let message = try? DNSMessage.decode(bytes), self.isReply(message) else {
            // Not our answer (a spoof, a stray or garbage): keep waiting for the real one until the timer.
            return .wait
        }
        if message.flags & DNSHeader.tc != 0 {
            // RFC 7766 §5: ask the same upstream again over TCP; a truncated TCP reply is a failure.
            if self.transport == .udp && self.packetsSent < self.budget {
                return self.send(to: self.upstream, over: .tcp, now: now)
            }
            self.refused[self.upstream] = true
            return self.next(now: now)
        }
        switch DNSRcode(rawValue: message.rcode) {
        case .noError, .nxDomain:
            return self.finish(.answer(UpstreamExchange.scrub(message, for: self.question)))
        default:
            // SERVFAIL, REFUSED, NOTIMP, FORMERR...: this upstream will not do better for this question.
            self.refused[self.upstream] = true
            return self.next(now: now)
        }
    }

    /// The attempt's socket failed: ICMP unreachable, a refused or reset TCP connection, a short TCP read.
    public mutating func transportFailed(now: UInt64) -> Action {
        guard !self.isFinished else { return .wait }
        return self.next(now: now)
    }

    /// A timer fired: moves on when the attempt's time is up, fails when the question's is.
    public mutating func timerFired(now: UInt64) -> Action {
        guard !self.isFinished else { return .wait }
        if now >= self.deadline { return self.finish(.fail) }
        guard now >= self.attemptDeadline else { return .wait }
        return self.next(now: now)
    }

    var budget: Int { UpstreamExchange.packetBudget(upstreams: self.upstreamCount) }

    /// The EDNS buffer size offered upstream: what fits every path without fragments (DNS flag day 2020).
    public static let udpSize: UInt16 = 1232

    /// The query of the attempt in flight as it goes on the wire: recursion desired, EDNS over UDP, and the
    /// two-byte length prefix over TCP.
    public var query: [UInt8] {
        let udp = self.transport == .udp
        let message = QueryBuilder.query(
            id: self.id, name: self.question.name, type: self.question.type, recursionDesired: true,
            udpSize: udp ? UpstreamExchange.udpSize : nil)
        return udp ? message : TCPFraming.framed(message)
    }

    /// Whether `message` answers the query in flight: a response with its ID and its question.
    func isReply(_ message: DNSMessage) -> Bool {
        guard message.id == self.id, message.flags & DNSHeader.qr != 0, let question = message.question else {
            return false
        }
        return question.name == self.question.name && question.type == self.question.type && question.qclass == 1
    }

    /// The next UDP try: round robin from the current upstream over those not refused and with tries left.
    mutating func next(now: UInt64) -> Action {
        guard now < self.deadline, self.packetsSent < self.budget else { return self.finish(.fail) }
        for step in 1...self.upstreamCount {
            let candidate = (self.upstream + step) % self.upstreamCount
            if !self.refused[candidate] && self.tries[candidate] < UpstreamExchange.triesPerUpstream {
                return self.send(to: candidate, over: .udp, now: now)
            }
        }
        return self.finish(.fail)
    }

    mutating func send(to upstream: Int, over transport: Transport, now: UInt64) -> Action {
        self.upstream = upstream
        self.transport = transport
        self.id = UInt16(truncatingIfNeeded: UpstreamExchange.mix(&self.random))
        self.packetsSent += 1
        if transport == .udp { self.tries[upstream] += 1 }
        let attempt = transport == .udp ? self.attemptMilliseconds : 2 * self.attemptMilliseconds
        self.attemptDeadline = min(self.deadline, now + attempt)
        return .send(upstream: upstream, transport: transport, id: self.id)
    }

    mutating func finish(_ action: Action) -> Action {
        self.isFinished = true
        return action
    }

    /// SplitMix64: the next number of the exchange's own sequence.
    static func mix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}

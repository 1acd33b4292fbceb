import DNSServer
import DNSWire
import Files
import FuzzDriver
import Glibc
import ZoneFile
import ZoneModel

/// The model every input is asked against: two views, sites, a wildcard, a delegation.
nonisolated(unsafe) let tables: DNSTables = {
    let zone = """
        $ORIGIN example.com.
        $TTL 300
        $PROXY reverseproxy lan=192.0.2.42,2001:db8:1::42 wan=203.0.113.1
        $SITE myserver http://192.0.2.69:80
        $SITE *.lab http://192.0.2.70:80
        $SITE nas http://192.0.2.10:80 views=lan
        @ MX 10 mail
        mail A 192.0.2.25
        txt TXT "a" "b"
        child NS ns.child
        ns.child A 192.0.2.54
        out CNAME www.example.org.
        """
    let files = MemoryFiles([
        "/fuzz/frontdoor.conf": """
        view lan 192.0.2.0/24 recursion
        view wan *
        upstream 192.0.2.1
        secondary plain 192.0.2.9 view=wan
        secondary keyed 198.51.100.1 view=lan key=k.key
        """,
        "/fuzz/k.key": "key \"k\" { algorithm hmac-sha256; secret \"q5c8TqIqv5CtcWw5XJ0fS2oFvHS3UQmx8aD7Xlh1Y8s=\"; };",
        "/fuzz/example.com.zone": zone,
    ])
    let result = Pipeline.run(directory: "/fuzz", files: files, inputs: CompileInputs(dateSerial: 2_024_010_100))
    guard let snapshot = result.snapshot else { fatalError("fuzz model does not compile: \(result.diagnostics.all)") }
    return DNSTables(snapshot: snapshot)
}()
nonisolated(unsafe) let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1024, alignment: 16)
nonisolated(unsafe) let output = UnsafeMutableRawBufferPointer.allocate(
    byteCount: Responder.maximumMessage + 2, alignment: 16)
nonisolated(unsafe) let key = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 16)
nonisolated(unsafe) let second = UnsafeMutableRawBufferPointer.allocate(
    byteCount: Responder.maximumMessage + 2, alignment: 16)
nonisolated(unsafe) let clients = [IPAddress("192.0.2.9"), IPAddress("198.51.100.1")].compactMap { $0 }

nonisolated(unsafe) let fallbackQuestion = CacheKey(name: DomainName.root, type: 1)

/// The input as a script of upstream behaviour for the forwarder's `UpstreamExchange`: byte 0 picks 1 to 4
/// upstreams, byte 1 the seed, every later byte an event (the input itself as a reply, patched to the
/// query in flight with the byte's rcode, or unpatched; a transport error; time passing). Whatever the
/// upstreams do, the exchange never sends more than its budget, never to an upstream that does not exist,
/// nothing once it has ended, and an answer it gives holds no record the reply did not.
func fuzzExchange(_ packet: UnsafeRawBufferPointer) {
    guard packet.count >= 2 else { return }
    let bytes = Array(packet)
    let upstreams = Int(bytes[0] % 4) + 1
    let original = try? DNSMessage.decode(packet)
    let question =
        original?.question.map { CacheKey(name: $0.name, type: $0.type) } ?? fallbackQuestion
    var exchange = UpstreamExchange(
        question: question, upstreamCount: upstreams, now: 0, deadlineMilliseconds: 3500, attemptMilliseconds: 1000,
        seed: UInt64(bytes[1]))
    var sent = 0
    var ended = false
    func check(_ action: UpstreamExchange.Action) {
        switch action {
        case .send(let upstream, _, _):
            sent += 1
            guard !ended, upstream >= 0, upstream < upstreams,
                sent <= UpstreamExchange.packetBudget(upstreams: upstreams)
            else { fatalError("exchange sent \(sent) to \(upstream) of \(upstreams), ended \(ended)") }
        case .answer(let message):
            guard !ended, message.answers.count <= (original?.answers.count ?? 0),
                message.authority.count <= (original?.authority.count ?? 0),
                message.additional.count <= (original?.additional.count ?? 0)
            else { fatalError("the answer holds records the reply did not") }
            ended = true
        case .fail:
            guard !ended else { fatalError("failed after it ended") }
            ended = true
        case .wait:
            break
        }
    }
    var now: UInt64 = 0
    check(exchange.start(now: now))
    for byte in bytes.dropFirst(2).prefix(64) {
        switch byte & 3 {
        case 0:
            var reply = bytes
            if reply.count >= 4 {
                reply[0] = UInt8(exchange.id >> 8)
                reply[1] = UInt8(exchange.id & 0xFF)
                reply[2] |= 0x80
                reply[3] = reply[3] & 0xF0 | (byte >> 4)
            }
            check(exchange.received(reply, now: now))
        case 1:
            check(exchange.transportFailed(now: now))
        case 2:
            now += UInt64(byte) * 8
            check(exchange.timerFired(now: now))
        default:
            check(exchange.received(bytes, now: now))
        }
    }
    // However it went, time running out ends it.
    check(exchange.timerFired(now: now + 3500))
    guard ended else { fatalError("the exchange outlived its deadline") }
}

/// One input: as a query to the responder from both views, over UDP and TCP, and as a whole message to
/// the decoder; every response we produce must decode again, and the UDP loop's two-step path (prepare,
/// then answer) must produce the same bytes as the one-step one. Then as a script for the forwarder's
/// upstream exchange (`fuzzExchange`).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let packet = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    _ = try? DNSMessage.decode(packet)
    fuzzExchange(packet)
    for client in clients {
        for tcp in [false, true] {
            let (action, _) = Responder.respond(
                to: packet, from: client, tcp: tcp, tables: tables, scratch: scratch, into: output)
            if case .reply(let length, _) = action {
                let response = UnsafeRawBufferPointer(rebasing: output[0..<length])
                guard (try? DNSMessage.decode(response)) != nil else {
                    fatalError("we produced an undecodable response")
                }
            }
            if action == .transfer {
                // The transfer path: whatever it sends decodes; a stream ends.
                let (reply, _) = ZoneTransfer.respond(
                    to: Array(packet), from: client, tcp: tcp, tables: tables, now: 1_800_000_000)
                var messages: [[UInt8]] = []
                switch reply {
                case .message(let bytes): messages = [bytes]
                case .stream(var stream):
                    while let next = stream.next(now: 1_800_000_000) {
                        messages.append(next)
                        guard messages.count < 100 else { fatalError("a transfer of a small zone does not end") }
                    }
                case .drop: break
                }
                for message in messages where (try? DNSMessage.decode(message)) == nil {
                    fatalError("the transfer path produced an undecodable message")
                }
            }
            if !tcp {
                let prepared = Responder.prepare(packet, from: client, tables: tables, key: key)
                let (again, _) = Responder.respond(
                    prepared, packet: packet, key: UnsafeRawBufferPointer(key), tcp: false, tables: tables,
                    scratch: scratch, into: second)
                guard again == action else { fatalError("prepared: \(again), one step: \(action)") }
                if case .reply(let length, _) = action, !output[0..<length].elementsEqual(second[0..<length]) {
                    fatalError("the prepared answer differs from the one-step answer")
                }
            }
        }
    }
    return 0
}

exit(frontdoor_run_fuzzer(CommandLine.argc, CommandLine.unsafeArgv) { data, size in fuzzOne(data, size) })

import DynDNS
import Testing
import ZoneModel

/// PCP (RFC 6887) MAP messages as bytes: what is sent, and what a router's answer (or a stranger's
/// datagram) means.
@Suite struct PCPTests {
    static let nonce: [UInt8] = Array(1...12)

    @Test(.bug(id: "19")) func mapRequestLayout() {
        let request = PCP.mapRequest(
            client: IPAddress("192.0.2.42")!, nonce: Self.nonce, protocol: 17, internalPort: 0xABCD, lifetime: 120)
        #expect(request.count == 60)
        #expect(Array(request[0..<8]) == [2, 1, 0, 0, 0, 0, 0, 120], "version 2, MAP, lifetime")
        #expect(Array(request[8..<24]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 42], "::ffff:client")
        #expect(Array(request[24..<36]) == Self.nonce)
        #expect(Array(request[36..<44]) == [17, 0, 0, 0, 0xAB, 0xCD, 0, 0], "UDP, internal port, any external port")
        #expect(request[44..<60].allSatisfy { $0 == 0 }, "no suggested external address")
    }

    static func response(result: UInt8, nonce: [UInt8] = Self.nonce, address: [UInt8] = [11, 22, 33, 44]) -> [UInt8] {
        var out: [UInt8] = [2, 0x81, 0, result, 0, 0, 0, 120, 0, 0, 0x10, 0x00]
        out += [UInt8](repeating: 0, count: 12)
        out += nonce + [17, 0, 0, 0, 0xAB, 0xCD, 0xAB, 0xCD]
        out += [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + address
        return out
    }

    @Test(.bug(id: "19")) func mapResponses() {
        let good = PCP.mapResponse(Self.response(result: 0), nonce: Self.nonce)
        #expect(
            good
                == .success(
                    PCP.MapResponse(
                        result: 0, lifetime: 120, epoch: 4096, internalPort: 0xABCD, externalPort: 0xABCD,
                        externalAddress: IPAddress("11.22.33.44"))))
        // Another request's answer, an ANNOUNCE or junk: not ours.
        #expect(
            PCP.mapResponse(Self.response(result: 0, nonce: Array(repeating: 9, count: 12)), nonce: Self.nonce) == nil)
        #expect(PCP.mapResponse([2, 0x80, 0, 0] + [UInt8](repeating: 0, count: 20), nonce: Self.nonce) == nil)
        #expect(PCP.mapResponse([1, 2], nonce: Self.nonce) == nil)
        #expect(
            PCP.mapResponse(Self.response(result: 7), nonce: Self.nonce)
                == .failure(DetectError("router says: NETWORK_FAILURE (the router has no working WAN address)")))
        #expect(
            PCP.mapResponse(Array(Self.response(result: 2).prefix(24)), nonce: Self.nonce)
                == .failure(
                    DetectError(
                        "router says: NOT_AUTHORIZED (PCP is switched off on the router, or this host may not map)")))
        #expect(
            PCP.mapResponse(Array(Self.response(result: 0).prefix(30)), nonce: Self.nonce)
                == .failure(DetectError("a PCP MAP reply of 30 bytes")))
        #expect(
            PCP.mapResponse([2, 0x81, 0], nonce: Self.nonce) == nil, "shorter than a header: ignored")
        #expect(
            PCP.mapResponse([0, 128, 0, 1, 0, 0, 0, 0], nonce: Self.nonce)
                == .failure(DetectError("the router speaks NAT-PMP, not PCP (use 'wan natpmp')")))
    }

    /// Random and truncated datagrams: an answer or nil, never a crash.
    @Test(.bug(id: "19")) func randomDatagrams() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...80, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if length > 2 && Bool.random(using: &generator) {
                bytes[0] = 2
                bytes[1] = 0x81
            }
            _ = PCP.mapResponse(bytes, nonce: Self.nonce)
        }
        let whole = Self.response(result: 0)
        for cut in 0..<whole.count { _ = PCP.mapResponse(Array(whole.prefix(cut)), nonce: Self.nonce) }
    }

    /// RFC 6887 §8.5: a router's epoch that goes back, or moves at another pace than the client's clock,
    /// means it restarted and lost its mappings. (previous epoch, client ms then, new epoch, client ms now).
    @Test(.bug(id: "19")) func epochs() {
        let table: [(previous: UInt32, then: UInt64, server: UInt32, now: UInt64, lost: Bool, why: String)] = [
            (1000, 0, 1060, 60_000, false, "a minute on both clocks"),
            (1000, 0, 1059, 61_000, false, "two seconds of slack"),
            (1000, 0, 999, 0, false, "one second back is rounding"),
            (1000, 0, 5, 60_000, true, "back to 5 s: restarted"),
            (1000, 0, 1030, 60_000, true, "half a minute in a minute: restarted, then up for a while"),
            (1000, 0, 1600, 60_000, true, "ten minutes in one: not the same server"),
            (3_600, 0, 3_600 + 7_000, 7_200_000, false, "two hours, its clock 1/36 slow: inside 1/16"),
            (0, 0, UInt32.max, 1_000, true, "a wild jump"),
        ]
        for row in table {
            var epoch = RouterEpoch()
            #expect(epoch.observe(row.previous, now: row.then) == false, "the first answer is only remembered")
            #expect(epoch.observe(row.server, now: row.now) == row.lost, "\(row.why)")
        }
    }
}

import DNSWire
import ZoneModel

/// A TSIG record as read from the end of a message (RFC 8945 §4.2).
public struct TSIGRecord: Equatable, Sendable {
    public var keyName: DomainName
    /// The algorithm's name, lower-cased (`hmac-sha256.`).
    public var algorithm: String
    public var time: UInt64
    public var fudge: UInt16
    public var mac: [UInt8]
    public var originalID: UInt16
    public var error: UInt16
    public var other: [UInt8]
}

/// TSIG signing and verification (RFC 8945 §4–§5), for both ends: the DynDNS updater and NOTIFY sign requests
/// and check replies; the DNS server checks signed requests and signs its answers, zone transfers included
/// (§5.3.1: every message after the first is signed over the previous MAC and the timers only).
public enum TSIG {
    public static let type: UInt16 = 250
    static let classANY: UInt16 = 255
    public static let defaultFudge: UInt16 = 300

    /// TSIG error codes (RFC 8945 §4.3.3 and RFC 2845).
    public static let badSig: UInt16 = 16
    public static let badKey: UInt16 = 17
    public static let badTime: UInt16 = 18
    /// NOTAUTH, the RCODE of a reply whose request failed its TSIG check.
    public static let notAuth: UInt16 = 9

    public static func errorName(_ code: UInt16) -> String {
        switch code {
        case 0: "NOERROR"
        case 16: "BADSIG"
        case 17: "BADKEY"
        case 18: "BADTIME"
        case 22: "BADTRUNC"
        default: "TSIG error \(code)"
        }
    }

    /// What a message's last record says.
    public enum Split: Equatable, Sendable {
        /// No TSIG: the last additional record is something else, or there is none.
        case unsigned
        case malformed
        /// The message as it was before it was signed (original ID, ARCOUNT one less) and its TSIG.
        case signed(unsigned: [UInt8], record: TSIGRecord)
    }

    /// Finds the TSIG at the end of `message` (it must be the last record, RFC 8945 §5.1).
    public static func split(_ message: [UInt8]) -> Split {
        message.withUnsafeBytes { raw -> Split in
            guard raw.count >= 12 else { return .malformed }
            let counts = (0..<4).map { Int(raw[4 + 2 * $0]) << 8 | Int(raw[5 + 2 * $0]) }
            guard counts[3] >= 1 else { return .unsigned }
            var reader = WireReader(raw, offset: 12)
            do throws(WireError) {
                for _ in 0..<counts[0] {
                    try reader.skipName()
                    try reader.skip(4)
                }
                let records = counts[1] + counts[2] + counts[3]
                var last = 0
                for index in 0..<records {
                    if index == records - 1 { last = reader.offset }
                    try reader.skipName()
                    try reader.skip(8)
                    try reader.skip(Int(try reader.readUInt16()))
                }
                guard reader.isAtEnd else { return .malformed }
                // The last record: owner (the key name), type, class, TTL, length, then the TSIG fields.
                reader.offset = last
                let keyName = try reader.readName()
                guard try reader.readUInt16() == TSIG.type else { return .unsigned }
                try reader.skip(8)
                let algorithm = try reader.readName()
                let time = UInt64(try reader.readUInt16()) << 32 | UInt64(try reader.readUInt32())
                let fudge = try reader.readUInt16()
                let mac = try reader.readBytes(Int(try reader.readUInt16()))
                let originalID = try reader.readUInt16()
                let error = try reader.readUInt16()
                let other = try reader.readBytes(Int(try reader.readUInt16()))
                guard reader.isAtEnd else { return .malformed }
                let record = TSIGRecord(
                    keyName: keyName, algorithm: algorithm.description, time: time, fudge: fudge, mac: mac,
                    originalID: originalID, error: error, other: other)
                var unsigned = Array(message[0..<last])
                unsigned[0] = UInt8(originalID >> 8)
                unsigned[1] = UInt8(originalID & 0xFF)
                let arcount = counts[3] - 1
                unsigned[10] = UInt8(arcount >> 8)
                unsigned[11] = UInt8(arcount & 0xFF)
                return .signed(unsigned: unsigned, record: record)
            } catch {
                return .malformed
            }
        }
    }

    /// The MAC of `message` (unsigned form) under `key` (RFC 8945 §4.3): `prior` is the request's MAC for a
    /// response, the previous message's for a later message of a transfer; `timersOnly` for those later
    /// messages, which cover only the time and fudge (§4.3.1).
    public static func mac(
        _ message: [UInt8], key: TSIGKey, time: UInt64, fudge: UInt16, error: UInt16 = 0, other: [UInt8] = [],
        prior: [UInt8]? = nil, timersOnly: Bool = false
    ) -> [UInt8] {
        var input: [UInt8] = []
        input.reserveCapacity(message.count + 128)
        if let prior { input += be16(UInt16(prior.count)) + prior }
        input += message
        if timersOnly {
            input += be48(time) + be16(fudge)
        } else {
            input += key.name.wire + be16(TSIG.classANY) + be32(0)
            input += (try? DomainName(key.algorithm.tsigName))?.wire ?? []
            input += be48(time) + be16(fudge) + be16(error) + be16(UInt16(other.count)) + other
        }
        return HMAC.authenticate(key.algorithm, key: key.secret, message: input)
    }

    /// `message` with a TSIG record appended (ARCOUNT one more).
    public static func append(
        to message: [UInt8], key: TSIGKey, time: UInt64, fudge: UInt16, mac: [UInt8], error: UInt16 = 0,
        other: [UInt8] = []
    ) -> [UInt8] {
        var out = message
        let arcount = UInt16(message[10]) << 8 | UInt16(message[11])
        out[10] = UInt8((arcount &+ 1) >> 8)
        out[11] = UInt8((arcount &+ 1) & 0xFF)
        var rdata = (try? DomainName(key.algorithm.tsigName))?.wire ?? []
        rdata += be48(time) + be16(fudge) + be16(UInt16(mac.count)) + mac
        rdata += [message[0], message[1]] + be16(error) + be16(UInt16(other.count)) + other
        out += key.name.wire + be16(TSIG.type) + be16(TSIG.classANY) + be32(0) + be16(UInt16(rdata.count)) + rdata
        return out
    }

    /// Signs a request; returns the signed message and its MAC, which the response's MAC covers.
    public static func sign(_ message: [UInt8], key: TSIGKey, time: UInt64, fudge: UInt16 = TSIG.defaultFudge)
        -> (message: [UInt8], mac: [UInt8])
    {
        let mac = TSIG.mac(message, key: key, time: time, fudge: fudge)
        return (TSIG.append(to: message, key: key, time: time, fudge: fudge, mac: mac), mac)
    }

    /// Signs a response (or a later message of a transfer, with `timersOnly`) over `prior`, the MAC it follows.
    public static func signResponse(
        _ message: [UInt8], key: TSIGKey, prior: [UInt8], time: UInt64, timersOnly: Bool = false,
        fudge: UInt16 = TSIG.defaultFudge
    ) -> (message: [UInt8], mac: [UInt8]) {
        let mac = TSIG.mac(message, key: key, time: time, fudge: fudge, prior: prior, timersOnly: timersOnly)
        return (TSIG.append(to: message, key: key, time: time, fudge: fudge, mac: mac), mac)
    }

    /// The outcome of checking a response's TSIG.
    public enum Verdict: Equatable, Sendable {
        case valid
        /// No TSIG on the response (a server that refuses the key before checking it may send none).
        case unsigned
        /// The TSIG error field was set by the server (BADSIG, BADKEY, BADTIME).
        case serverError(UInt16)
        case badMAC
        case malformed
    }

    /// Checks the TSIG of `response` to a request whose MAC was `requestMAC` (RFC 8945 §5.3); `timersOnly` for
    /// the later messages of a transfer, `requestMAC` then being the previous message's MAC.
    public static func verify(
        _ response: [UInt8], requestMAC: [UInt8], key: TSIGKey, now: UInt64, timersOnly: Bool = false
    ) -> Verdict {
        switch TSIG.split(response) {
        case .unsigned: return .unsigned
        case .malformed: return .malformed
        case .signed(let unsigned, let record):
            if record.error != 0 { return .serverError(record.error) }
            let expected = TSIG.mac(
                unsigned, key: key, time: record.time, fudge: record.fudge, error: record.error, other: record.other,
                prior: requestMAC, timersOnly: timersOnly)
            guard HMAC.equal(expected, record.mac) else { return .badMAC }
            let skew = now > record.time ? now - record.time : record.time - now
            return skew <= UInt64(record.fudge) ? .valid : .serverError(TSIG.badTime)
        }
    }

    /// What a signed request proved (RFC 8945 §5.2).
    public enum RequestCheck: Equatable, Sendable {
        case unsigned
        case malformed
        /// Signed with `key`; the response is signed over `mac`.
        case valid(key: TSIGKey, mac: [UInt8])
        /// The key is unknown (or its algorithm differs): BADKEY, answered unsigned.
        case badKey(TSIGRecord)
        /// The MAC is wrong: BADSIG, answered unsigned.
        case badSignature(TSIGRecord)
        /// The MAC is right but the clocks differ by more than the fudge: BADTIME, answered signed.
        case badTime(key: TSIGKey, record: TSIGRecord)
    }

    /// Checks `request`'s TSIG against the keys Frontdoor knows.
    public static func check(request: [UInt8], keys: [TSIGKey], now: UInt64) -> RequestCheck {
        switch TSIG.split(request) {
        case .unsigned: return .unsigned
        case .malformed: return .malformed
        case .signed(let unsigned, let record):
            guard
                let key = keys.first(where: {
                    $0.name == record.keyName && $0.algorithm.tsigName == record.algorithm
                })
            else { return .badKey(record) }
            let expected = TSIG.mac(
                unsigned, key: key, time: record.time, fudge: record.fudge, error: record.error, other: record.other)
            // A truncated MAC (RFC 8945 §5.2.2.1) is not accepted: the whole digest or nothing.
            guard HMAC.equal(expected, record.mac) else { return .badSignature(record) }
            let skew = now > record.time ? now - record.time : record.time - now
            guard skew <= UInt64(record.fudge) else { return .badTime(key: key, record: record) }
            return .valid(key: key, mac: record.mac)
        }
    }

    /// The TSIG of a reply to a request that failed its check (RFC 8945 §5.2.3, §5.2.2): `reply` is the
    /// NOTAUTH message; BADKEY and BADSIG get an unsigned TSIG carrying the error, BADTIME a signed one with the
    /// server's time as other data.
    public static func errorReply(_ reply: [UInt8], check: RequestCheck, now: UInt64) -> [UInt8] {
        switch check {
        case .badKey(let record), .badSignature(let record):
            let error = { if case .badKey = check { TSIG.badKey } else { TSIG.badSig } }()
            var out = reply
            let arcount = UInt16(reply[10]) << 8 | UInt16(reply[11])
            out[10] = UInt8((arcount &+ 1) >> 8)
            out[11] = UInt8((arcount &+ 1) & 0xFF)
            var rdata = (try? DomainName(record.algorithm))?.wire ?? [0]
            rdata += be48(record.time) + be16(record.fudge) + be16(0)
            rdata += be16(record.originalID) + be16(error) + be16(0)
            out += record.keyName.wire + be16(TSIG.type) + be16(TSIG.classANY) + be32(0)
            out += be16(UInt16(rdata.count)) + rdata
            return out
        case .badTime(let key, let record):
            let other = be48(now)
            let mac = TSIG.mac(
                reply, key: key, time: record.time, fudge: record.fudge, error: TSIG.badTime, other: other,
                prior: record.mac)
            return TSIG.append(
                to: reply, key: key, time: record.time, fudge: record.fudge, mac: mac, error: TSIG.badTime,
                other: other)
        case .unsigned, .malformed, .valid:
            return reply
        }
    }
}

package func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
package func be32(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}
package func be48(_ value: UInt64) -> [UInt8] {
    (0..<6).map { UInt8(truncatingIfNeeded: value >> (40 - 8 * UInt64($0))) }
}

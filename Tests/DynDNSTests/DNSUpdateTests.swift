import DNSAuth
import DNSWire
import DynDNS
import TestSupport
import Testing
import ZoneModel

/// RFC 2136 updates signed with TSIG against a real BIND primary on loopback.
@Suite(.serialized) struct DNSUpdateTests {
    static let zoneText = """
        $TTL 300
        @    IN SOA ns.example.org. admin.example.org. 1 3600 600 86400 60
        @    IN NS  ns.example.org.
        ns   IN A   192.0.2.53
        home IN A   192.0.2.1
        """
    // A 256-bit secret, as `tsig-keygen -a hmac-sha256` makes.
    static let secret = "q5c8TqIqv5CtcWw5XJ0fS2oFvHS3UQmx8aD7Xlh1Y8s="

    @Test(arguments: [TSIGAlgorithm.sha256, .sha512])
    func updateChangesTheRecordAndTheReplyVerifies(algorithm: TSIGAlgorithm) throws {
        guard
            let named = try BINDServer(
                zone: "example.org", zoneText: Self.zoneText, keyName: "frontdoor-key",
                algorithm: algorithm.rawValue, secret: Self.secret)
        else { return }
        let key = try TSIGKey.parse(bindKeyFile: Fixtures.textAt(named.keyFile))
        #expect(key.algorithm == algorithm)
        #expect(key.name == (try DomainName("frontdoor-key.")))
        let server = SocketAddress(address: IPAddress("127.0.0.1")!, port: named.port)
        let record = try DomainName("home.example.org.")
        #expect(try DNSUpdate.current(server: server, record: record, v4: true) == [IPAddress("192.0.2.1")!])
        try DNSUpdate.push(
            server: server, zone: try DomainName("example.org."), record: record, address: IPAddress("203.0.113.7")!,
            ttl: 60, key: key)
        // dig, a client that is not ours, sees the change.
        let answer = try #require(try Dig.ask(port: named.port, ["home.example.org", "A"]))
        #expect(answer.answer == ["home.example.org. 60 IN A 203.0.113.7"], "\(answer.output)")
        #expect(try DNSUpdate.current(server: server, record: record, v4: true) == [IPAddress("203.0.113.7")!])
        // AAAA too.
        try DNSUpdate.push(
            server: server, zone: try DomainName("example.org."), record: record, address: IPAddress("2001:db8::7")!,
            ttl: 60, key: key)
        #expect(try DNSUpdate.current(server: server, record: record, v4: false) == [IPAddress("2001:db8::7")!])
    }

    @Test func aWrongKeyIsRefusedAndReported() throws {
        guard
            let named = try BINDServer(
                zone: "example.org", zoneText: Self.zoneText, keyName: "frontdoor-key", algorithm: "hmac-sha256",
                secret: Self.secret)
        else { return }
        let server = SocketAddress(address: IPAddress("127.0.0.1")!, port: named.port)
        let zone = try DomainName("example.org.")
        let record = try DomainName("home.example.org.")
        let wrongSecret = TSIGKey(
            name: try DomainName("frontdoor-key."), algorithm: .sha256, secret: Array(repeating: 7, count: 32))
        #expect(throws: DynDNSError.refused("the server rejected the TSIG key 'frontdoor-key': BADSIG")) {
            try DNSUpdate.push(
                server: server, zone: zone, record: record, address: IPAddress("203.0.113.9")!, ttl: 60,
                key: wrongSecret)
        }
        let unknownName = TSIGKey(
            name: try DomainName("stranger."), algorithm: .sha256, secret: Base64.decode(Self.secret)!)
        #expect(throws: DynDNSError.refused("the server rejected the TSIG key 'stranger': BADKEY")) {
            try DNSUpdate.push(
                server: server, zone: zone, record: record, address: IPAddress("203.0.113.9")!, ttl: 60,
                key: unknownName)
        }
        // Nothing changed.
        #expect(try DNSUpdate.current(server: server, record: record, v4: true) == [IPAddress("192.0.2.1")!])
    }

    @Test func keyFilesAreParsedStrictly() throws {
        let good = """
            # made by tsig-keygen
            key "ddns.example." {
            \talgorithm hmac-sha512; // the strongest
            \tsecret "\(Self.secret)";
            };
            """
        let key = try TSIGKey.parse(bindKeyFile: good)
        let expectedName = try DomainName("ddns.example.")
        #expect(key.algorithm == .sha512 && key.secret.count == 32 && key.name == expectedName)
        let unsupported = "key algorithm 'hmac-md5' is not supported (hmac-sha256, hmac-sha384, hmac-sha512)"
        #expect(throws: TSIGKeyError(unsupported)) {
            try TSIGKey.parse(bindKeyFile: "key \"k\" { algorithm hmac-md5; secret \"\(Self.secret)\"; };")
        }
        #expect(throws: TSIGKeyError("key secret is not valid base64")) {
            try TSIGKey.parse(bindKeyFile: "key \"k\" { algorithm hmac-sha256; secret \"not*base64\"; };")
        }
        #expect(throws: TSIGKeyError("no 'key \"NAME\" { ... };' statement in key file")) {
            try TSIGKey.parse(bindKeyFile: "hello")
        }
        #expect(throws: TSIGKeyError("key file has no secret")) {
            try TSIGKey.parse(bindKeyFile: "key \"k\" { algorithm hmac-sha256; };")
        }
    }
}

import Testing
import ZoneModel

@Suite struct RouteTableTests {
    func site(_ name: String) throws -> CompiledSite {
        CompiledSite(
            name: try DomainName(name), backends: [Backend(address: try #require(SocketAddress("192.0.2.69:80")))],
            balance: .roundRobin, healthPath: nil, viewIndices: [0])
    }

    @Test(arguments: [
        ("myserver.example.com", "myserver.example.com."),
        ("MyServer.Example.COM", "myserver.example.com."),
        ("myserver.example.com:8080", "myserver.example.com."),
        ("myserver.example.com.", "myserver.example.com."),
        ("a.lab.example.com", "*.lab.example.com."),
        ("deep.a.lab.example.com", "*.lab.example.com."),
        ("x.deep.lab.example.com", "*.deep.lab.example.com."),
        ("lab.example.com", nil),
        ("example.org", nil),
        ("[2001:db8::1]:80", nil),
        ("", nil),
    ])
    func hostPicksTheSite(host: String, expected: String?) throws {
        let table = RouteTable(sites: [
            try site("myserver.example.com."), try site("*.lab.example.com."), try site("*.deep.lab.example.com."),
        ])
        #expect(table.route(host: host)?.name.description == expected)
    }
}

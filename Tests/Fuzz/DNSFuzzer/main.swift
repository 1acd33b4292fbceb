import DNSServer
import DNSWire
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
        "/fuzz/frontdoor.conf": "view lan 192.0.2.0/24 recursion\nview wan *\nupstream 192.0.2.1\n",
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

/// One input: as a query to the responder from both views, over UDP and TCP, and as a whole message to
/// the decoder; every response we produce must decode again, and the UDP loop's two-step path (prepare,
/// then answer) must produce the same bytes as the one-step one.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let packet = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    _ = try? DNSMessage.decode(packet)
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

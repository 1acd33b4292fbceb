import DynDNS
import FuzzDriver
import Glibc
import ZoneModel

/// What a router (or anyone on the LAN) can send: any bytes as an XML document (device descriptions, SOAP
/// replies), an SSDP search reply, a device description naming the control URL, a SOAP answer, a PCP MAP
/// answer for a known nonce, a default-route table; and the kernel's interface notices (netlink).
let gateway = IPAddress("192.0.2.1")!
let nonce: [UInt8] = Array(1...12)

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? XMLReader.parse(bytes)
    _ = UPnP.location(ofSearchResponse: bytes)
    _ = UPnP.controlURL(description: bytes, location: "http://192.0.2.1:5000/rootDesc.xml", gateway: gateway)
    _ = UPnP.externalAddress(status: 200, body: bytes)
    _ = PCP.mapResponse(bytes, nonce: nonce)
    _ = InterfaceEvents.decode(bytes)
    _ = RouterDiscovery.defaultRoute(table: bytes)
    // With a matching nonce spliced in, so the decoder's later fields are reached too.
    if bytes.count >= 60 {
        var answer = bytes
        answer[0] = 2
        answer[1] = 0x81
        answer.replaceSubrange(24..<36, with: nonce)
        _ = PCP.mapResponse(answer, nonce: nonce)
    }
    return 0
}

exit(frontdoor_run_fuzzer(CommandLine.argc, CommandLine.unsafeArgv) { data, size in fuzzOne(data, size) })

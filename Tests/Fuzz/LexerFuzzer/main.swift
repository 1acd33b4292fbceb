import Files
import FuzzDriver
import Glibc
import ZoneFile
import ZoneModel

/// One input: any bytes as a zone file and as a config file, through lexing, parsing, validation,
/// compilation and export. A crash, a trap or a hang is a bug; diagnostics are the expected result.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    var diagnostics = Diagnostics()
    _ = Lexer.entries(of: bytes, file: "fuzz.zone", diagnostics: &diagnostics)

    let files = MemoryFiles([
        "/fuzz/frontdoor.conf": "view lan 192.0.2.0/24 recursion\nview wan *\nupstream 192.0.2.1\nwan interface eth0\n",
        "/fuzz/home.arpa.zone": String(decoding: bytes, as: UTF8.self),
    ])
    let result = Pipeline.run(directory: "/fuzz", files: files, inputs: CompileInputs(dateSerial: 2_024_010_100))
    if let snapshot = result.snapshot, let apex = try? DomainName("home.arpa.") {
        for view in snapshot.views { _ = ZoneExporter.export(view, apex: apex) }
    }
    var configParser = ConfigParser(files: files, directory: "/fuzz")
    _ = configParser.parse(bytes: bytes, file: "fuzz.conf")
    return 0
}

exit(frontdoor_run_fuzzer(CommandLine.argc, CommandLine.unsafeArgv) { data, size in fuzzOne(data, size) })

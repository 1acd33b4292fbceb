// swift-tools-version:6.0
import Foundation
import PackageDescription

// Frontdoor: split-horizon DNS, dynamic DNS and a Host-routing reverse proxy from one model.
// Layers point one way: ZoneModel (values) <- ZoneFile (parse, validate, compile) <- frontdoor (CLI); Files (the
// file system, or files held in memory for tests) is below all that read or write files.
// No package dependencies: the toolchain only (see README.md).

// The per-packet and per-request targets drop Swift's run-time exclusivity checks in release builds: each
// access to a class's stored property otherwise costs a call and a thread-local lookup (7% of the proxy's
// instructions per request, measured with callgrind). Debug builds, and so `swift test`, keep the checks, and
// the compiler's static checks apply in both.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

var targets: [Target] = [
    .target(
        name: "ZoneModel",
        exclude: ["README.md"],
        swiftSettings: hotPath
    ),
    .target(
        name: "Files",
        exclude: ["README.md"]
    ),
    .target(
        name: "ZoneFile",
        dependencies: ["ZoneModel", "Files"],
        exclude: ["README.md"]
    ),
    .target(
        name: "DNSWire",
        dependencies: ["ZoneModel"],
        exclude: ["README.md"],
        swiftSettings: hotPath
    ),
    .target(
        name: "DNSServer",
        dependencies: ["ZoneModel", "DNSWire", "DNSAuth"],
        exclude: ["README.md"],
        swiftSettings: hotPath
    ),
    .target(
        name: "HTTPWire",
        dependencies: ["ZoneModel"],
        exclude: ["README.md"],
        // Its small field helpers are called per field from HTTPProxy: cross-module optimisation lets them
        // inline there as they did when both were one module.
        swiftSettings: hotPath + [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
    ),
    .target(
        name: "HTTPProxy",
        dependencies: ["ZoneModel", "HTTPWire"],
        exclude: ["README.md"],
        swiftSettings: hotPath
    ),
    .target(
        name: "CSys",
        exclude: ["README.md"]
    ),
    .target(
        name: "EventLoop",
        dependencies: ["CSys", "ZoneModel"],
        exclude: ["README.md"],
        swiftSettings: hotPath
    ),
    .systemLibrary(
        name: "COpenSSL",
        pkgConfig: "openssl",
        providers: [.apt(["libssl-dev"])]
    ),
    .target(
        name: "TLS",
        dependencies: ["COpenSSL", "Files"],
        exclude: ["README.md"],
        swiftSettings: hotPath
    ),
    .target(
        name: "DNSAuth",
        dependencies: ["ZoneModel", "DNSWire", "COpenSSL"],
        exclude: ["README.md"]
    ),
    .target(
        name: "DynDNS",
        dependencies: ["ZoneModel", "Files", "DNSWire", "DNSAuth", "EventLoop", "CSys", "COpenSSL", "HTTPWire"],
        exclude: ["README.md"]
    ),
    .target(
        name: "ACME",
        dependencies: ["ZoneModel", "COpenSSL", "DNSAuth", "DynDNS"],
        exclude: ["README.md"]
    ),
    .target(
        name: "Runtime",
        dependencies: [
            "CSys", "ZoneModel", "Files", "ZoneFile", "DNSWire", "DNSServer", "EventLoop", "HTTPWire", "HTTPProxy",
            "DynDNS", "TLS", "DNSAuth", "ACME",
        ],
        exclude: ["README.md"],
        swiftSettings: hotPath
    ),
    .executableTarget(
        name: "frontdoor",
        dependencies: ["ZoneModel", "Files", "ZoneFile", "DNSServer", "Runtime", "HTTPProxy", "DynDNS", "TLS", "ACME"],
        exclude: ["README.md"]
    ),
    .target(
        name: "TestSupport",
        dependencies: [
            "ZoneModel", "Files", "ZoneFile", "DNSServer", "Runtime", "EventLoop", "HTTPWire", "HTTPProxy", "CSys",
        ],
        path: "Tests/TestSupport"
    ),
    .testTarget(
        name: "ZoneModelTests",
        dependencies: ["ZoneModel", "TestSupport"]
    ),
    .testTarget(
        name: "ZoneFileTests",
        dependencies: ["ZoneModel", "Files", "ZoneFile", "TestSupport"]
    ),
    .testTarget(
        name: "DNSWireTests",
        dependencies: ["ZoneModel", "DNSWire", "TestSupport"]
    ),
    .testTarget(
        name: "DNSServerTests",
        dependencies: ["ZoneModel", "ZoneFile", "DNSWire", "DNSServer", "DNSAuth", "TestSupport"]
    ),
    .executableTarget(
        name: "StateWriter",
        dependencies: ["DynDNS"],
        path: "Tests/StateWriter"
    ),
    .testTarget(
        name: "DynDNSTests",
        dependencies: ["DynDNS", "DNSAuth", "ZoneModel", "DNSWire", "EventLoop", "TestSupport"]
    ),
    .testTarget(
        name: "HTTPWireTests",
        dependencies: ["HTTPWire", "ZoneModel"]
    ),
    .testTarget(
        name: "HTTPProxyTests",
        dependencies: ["HTTPProxy", "HTTPWire", "ZoneModel", "ZoneFile", "TestSupport"]
    ),
    .testTarget(
        name: "TLSTests",
        dependencies: ["TLS", "TestSupport"]
    ),
    .testTarget(
        name: "ACMETests",
        dependencies: ["ACME", "ZoneModel", "DynDNS", "TestSupport"]
    ),
    .testTarget(
        name: "RuntimeTests",
        dependencies: ["Runtime", "ZoneModel", "ZoneFile", "Files", "DNSWire", "TestSupport"]
    ),
    .testTarget(
        name: "EndToEndTests",
        dependencies: [
            "ZoneModel", "ZoneFile", "DNSWire", "DNSServer", "Runtime", "EventLoop", "HTTPWire", "HTTPProxy",
            "TestSupport", "TLS", "DNSAuth", "DynDNS", "ACME",
        ]
    ),
]

// The libFuzzer targets exist only when Tests/Fuzz/run.sh asks for them: they link libFuzzer and the
// sanitizers, which an ordinary `swift build` must not.
if ProcessInfo.processInfo.environment["FRONTDOOR_FUZZ"] != nil {
    targets += [
        .target(name: "FuzzDriver", path: "Tests/Fuzz/FuzzDriver"),
        .executableTarget(
            name: "LexerFuzzer",
            dependencies: ["Files", "ZoneFile", "FuzzDriver"],
            path: "Tests/Fuzz/LexerFuzzer",
            swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])]
        ),
        .executableTarget(
            name: "TLSFuzzer",
            dependencies: ["TLS", "FuzzDriver"],
            path: "Tests/Fuzz/TLSFuzzer",
            swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])]
        ),
        .executableTarget(
            name: "RouterFuzzer",
            dependencies: ["DynDNS", "ZoneModel", "FuzzDriver"],
            path: "Tests/Fuzz/RouterFuzzer",
            swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])]
        ),
        .executableTarget(
            name: "DNSFuzzer",
            dependencies: ["Files", "ZoneFile", "DNSWire", "DNSServer", "FuzzDriver"],
            path: "Tests/Fuzz/DNSFuzzer",
            swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])]
        ),
    ]
}

let package = Package(
    name: "Frontdoor",
    products: [
        .executable(name: "frontdoor", targets: ["frontdoor"])
    ],
    targets: targets,
    swiftLanguageModes: [.v6]
)

import Foundation

/// A test CA and certificates it signs, made with the `openssl` command (ECDSA P-256, as the HTTPS issue
/// asks), in a temporary directory of their own.
package final class TestCertificates {
    package let directory: String
    let openssl: String

    /// Nil (with the reason printed) when the openssl command is missing.
    package init?() throws {
        guard let openssl = Tool.find("openssl") else {
            Tool.skip("openssl", package: "openssl")
            return nil
        }
        self.openssl = openssl
        self.directory = try Tool.temporaryDirectory()
        try self.run([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
            "-subj", "/CN=Frontdoor Test CA", "-keyout", self.path("ca.key"), "-out", self.path("ca.crt"),
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
    }

    deinit { try? FileManager.default.removeItem(atPath: self.directory) }

    package func path(_ name: String) -> String { self.directory + "/" + name }

    /// The CA's certificate, for clients (`curl --cacert`).
    package var authority: String { self.path("ca.crt") }

    /// Issues `NAME.crt` + `NAME.key` into `into` (a directory under this one, made if needed) for the DNS
    /// names given (none: a certificate without subjectAltName; an IP address becomes an IP entry); `rsa` for
    /// an RSA key instead of P-256.
    @discardableResult
    package func issue(_ name: String, names: [String], into folder: String = "certs", rsa: Bool = false) throws
        -> (chain: String, key: String)
    {
        let target = self.path(folder)
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let key = "\(target)/\(name).key"
        let chain = "\(target)/\(name).crt"
        let request = self.path("\(name).csr")
        let keyOptions = rsa ? ["rsa:2048"] : ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        try self.run(
            ["req", "-new", "-newkey"] + keyOptions + [
                "-nodes", "-subj", "/CN=\(name)", "-keyout", key, "-out", request,
            ])
        let extensions = self.path("\(name).ext")
        var lines = ["basicConstraints=CA:FALSE", "extendedKeyUsage=serverAuth"]
        if !names.isEmpty {
            // An address (digits and dots, or with a colon) is an IP entry, as a backend reached by address needs.
            let entries = names.map { name in
                name.contains(":") || name.allSatisfy({ $0.isNumber || $0 == "." }) ? "IP:\(name)" : "DNS:\(name)"
            }
            lines.append("subjectAltName=" + entries.joined(separator: ","))
        }
        try lines.joined(separator: "\n").write(toFile: extensions, atomically: true, encoding: .utf8)
        try self.run([
            "x509", "-req", "-in", request, "-CA", self.authority, "-CAkey", self.path("ca.key"), "-CAcreateserial",
            "-days", "7", "-extfile", extensions, "-out", chain,
        ])
        return (chain, key)
    }

    func run(_ arguments: [String]) throws {
        let outcome = try Tool.run(self.openssl, arguments)
        guard outcome.status == 0 else {
            throw FixtureError(message: "openssl \(arguments.prefix(2).joined(separator: " ")): \(outcome.stderr)")
        }
    }
}

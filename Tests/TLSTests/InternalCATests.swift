import Foundation
import TLS
import TestSupport
import Testing

/// The internal CA: made once, kept, and its leaves verify against its root with OpenSSL's own verifier.
@Suite struct InternalCATests {
    @Test(.bug(id: "15")) func theRootIsMadeOnceAndItsLeavesVerify() throws {
        guard let openssl = Tool.find("openssl") else { return Tool.skip("openssl", package: "openssl") }
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let caDirectory = directory + "/ca"
        let (first, created) = try InternalCA.open(directory: caDirectory)
        #expect(created)
        let keyMode = try FileManager.default.attributesOfItem(atPath: caDirectory + "/root.key")[.posixPermissions]
        #expect(keyMode as? Int == 0o600, "the root key is the owner's only")
        let (again, createdAgain) = try InternalCA.open(directory: caDirectory)
        #expect(!createdAgain && again.rootPEM == first.rootPEM, "kept, not made again")

        guard case .memory(let chain, let key, _) = try again.issue(["nas.home.arpa", "*.lab.home.arpa"]) else {
            Issue.record("a leaf in memory")
            return
        }
        try Data(chain).write(to: URL(fileURLWithPath: directory + "/leaf.pem"))
        let verified = try Tool.run(
            openssl,
            ["verify", "-CAfile", caDirectory + "/root.crt", "-purpose", "sslserver", directory + "/leaf.pem"])
        #expect(verified.status == 0, "\(verified.stdout) \(verified.stderr)")
        let text = try Tool.run(openssl, ["x509", "-in", directory + "/leaf.pem", "-noout", "-text"]).stdout
        #expect(text.contains("DNS:nas.home.arpa, DNS:*.lab.home.arpa"), "\(text)")
        #expect(text.contains("ASN1 OID: prime256v1"), "ECDSA P-256")
        #expect(text.contains("TLS Web Server Authentication"))
        let root = try Tool.run(openssl, ["x509", "-in", caDirectory + "/root.crt", "-noout", "-text"]).stdout
        #expect(root.contains("CA:TRUE, pathlen:0"), "\(root)")
        // Served as it is issued.
        let server = try TLSServer(sources: [.memory(chain: chain, key: key, origin: "internal CA")])
        #expect(server.table.names == ["nas.home.arpa", "*.lab.home.arpa"])
        #expect(server.table.lookup("git.lab.home.arpa")?.origin == "internal CA")
        #expect((6...7).contains(server.certificates[0].daysLeft))
    }

    @Test(.bug(id: "15")) func aCAWhoseKeyIsExposedOrMissingIsRefused() throws {
        let directory = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try InternalCA.open(directory: directory)
        chmod(directory + "/root.key", 0o644)
        #expect(throws: TLSError.self) { _ = try InternalCA.open(directory: directory) }
        do {
            _ = try InternalCA.open(directory: directory)
        } catch {
            #expect(error.description.contains("chmod 600"), "\(error)")
        }
        try FileManager.default.removeItem(atPath: directory + "/root.key")
        do {
            _ = try InternalCA.open(directory: directory)
            Issue.record("a root without its key is refused")
        } catch {
            #expect(error.description.contains("root.key is missing"), "\(error)")
        }
        #expect(throws: TLSError.self) { _ = try InternalCA.open(directory: "/proc/no/such/place") }
    }
}

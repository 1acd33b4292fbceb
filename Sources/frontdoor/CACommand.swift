import Runtime
import TLS
import ZoneFile
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// `frontdoor ca export`: the internal CA's root certificate, for devices to trust.
enum CACommand {
    static let help = """
        usage: frontdoor ca export [DIR]

        Prints the root certificate (PEM) of Frontdoor's internal CA, which issues the certificates of sites
        'internal-ca' in DIR/frontdoor.conf covers (default DIR /etc/frontdoor). Install it on each device
        once (browsers, phones: as a trusted root; Debian: /usr/local/share/ca-certificates/frontdoor.crt and
        update-ca-certificates). The CA lives in state-dir/ca (its key never leaves it); it is made on first
        use, by 'run' or by this command.
        """

    static func run(_ words: [String]) throws(UsageError) -> ExitCode {
        let arguments = try Arguments(words, valued: [], boolean: [])
        guard arguments.positional.first == "export" else { throw UsageError(message: "ca takes 'export'") }
        guard arguments.positional.count <= 2 else { throw UsageError(message: "ca export takes one directory") }
        let directory = arguments.positional.count == 2 ? arguments.positional[1] : defaultDirectory
        let (model, diagnostics) = ModelLoader.load(directory: directory)
        if !diagnostics.errors.isEmpty {
            for diagnostic in diagnostics.sorted { printError(diagnostic.description) }
            return .badConfig
        }
        guard model.settings.internalCA != nil else {
            printError("frontdoor ca: \(directory)/frontdoor.conf has no 'internal-ca': there is no CA to export")
            return .badConfig
        }
        guard let caDirectory = HTTPSCertificates.authorityDirectory(model.settings) else {
            printError("frontdoor ca: 'internal-ca' needs 'state-dir DIR' in \(directory)/frontdoor.conf")
            return .badConfig
        }
        do {
            let (authority, created) = try InternalCA.open(directory: caDirectory)
            if created { printError("frontdoor ca: made a new root in \(authority.rootPath)") }
            print(String(decoding: authority.rootPEM, as: UTF8.self), terminator: "")
            return .ok
        } catch {
            printError("frontdoor ca: \(error.description)")
            return .failure
        }
    }
}

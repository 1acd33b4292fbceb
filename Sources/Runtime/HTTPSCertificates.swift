import ACME
import Files
import TLS
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// What the HTTPS listeners serve, built from the settings and the sites: the operator's certificate files
/// (`tls DIR`), and for sites no file covers, leaves from the internal CA when `internal-ca` is on (all
/// sites, or those under its suffixes). Issued leaves are kept across rebuilds — a reload does not reissue —
/// and renewed once a third of their life is left. Control plane only.
public final class HTTPSCertificates: @unchecked Sendable {
    struct Leaf {
        var source: CertificateSource
        /// Wall-clock seconds.
        var expires: Int
    }

    var leaves: [String: Leaf] = [:]
    var authority: InternalCA?
    /// The session-ticket keys, carried from one build to the next (a reload keeps resumption working) and
    /// rotated every `TicketKeys.period`.
    var ticketKeys: TicketKeys?
    /// Set when a build made the internal CA's root (its path), for the log line.
    public private(set) var createdRoot: String?

    public init() {}

    /// Whether the settings ask for HTTPS at all.
    public static func configured(_ settings: Settings) -> Bool {
        settings.tlsDirectory != nil || settings.internalCA != nil || settings.acme != nil
    }

    /// The internal CA's directory under the state directory.
    public static func authorityDirectory(_ settings: Settings) -> String? {
        settings.stateDirectory.map { joinPath($0, "ca") }
    }

    /// The certificates for `settings` and `sites` at `now` (wall-clock seconds).
    public func build(settings: Settings, sites: [CompiledSite], now: Int) throws(TLSError) -> TLSServer {
        self.createdRoot = nil
        let keys: TicketKeys
        if let current = self.ticketKeys {
            keys = current.due(now: now) ? try current.rotated(now: now) : current
        } else {
            keys = try TicketKeys(now: now)
        }
        let server = try self.server(settings: settings, sites: sites, now: now, keys: keys)
        self.ticketKeys = keys
        return server
    }

    func server(settings: Settings, sites: [CompiledSite], now: Int, keys: TicketKeys) throws(TLSError) -> TLSServer {
        var sources: [CertificateSource] = []
        if let directory = settings.tlsDirectory {
            switch CertificateFiles.pairs(in: directory, files: DiskFiles()) {
            case .success(let pairs): sources = pairs.map(CertificateSource.files)
            case .failure(let error): throw error
            }
            if sources.isEmpty && settings.internalCA == nil {
                throw TLSError("\(directory): no NAME.crt and NAME.key pair")
            }
        }
        // Certificates from the ACME CA, after the operator's own (which win for a name both cover).
        if settings.acme != nil, let directory = ACMEManager.certificateDirectory(settings),
            DiskFiles().mode(directory) != nil
        {
            switch CertificateFiles.pairs(in: directory, files: DiskFiles()) {
            case .success(let pairs): sources += pairs.map(CertificateSource.files)
            case .failure(let error): throw error
            }
        }
        // With ACME, names no public CA signs go to the internal CA without being asked.
        let suffixes = settings.internalCA ?? (settings.acme != nil ? CertificatePlan.privateSuffixes : nil)
        guard let suffixes,
            settings.internalCA != nil
                || sites.contains(where: { site in suffixes.contains { site.name.isSubdomain(of: $0) } })
        else {
            return try TLSServer(sources: sources, fallback: settings.tlsDefault, ticketKeys: keys)
        }
        guard let directory = HTTPSCertificates.authorityDirectory(settings) else {
            throw TLSError("'internal-ca' keeps its root key in the state directory: add 'state-dir DIR'")
        }
        let operatorFiles = try TLSServer(sources: sources)
        if self.authority?.directory != directory {
            let (authority, created) = try InternalCA.open(directory: directory)
            self.authority = authority
            if created { self.createdRoot = authority.rootPath }
        }
        guard let authority = self.authority else { throw TLSError("no internal CA") }
        var kept: [String: Leaf] = [:]
        for site in sites where suffixes.isEmpty || suffixes.contains(where: { site.name.isSubdomain(of: $0) }) {
            let name = site.name.hostDescription
            guard operatorFiles.table.covering(name) == nil else { continue }
            if let leaf = self.leaves[name], !HTTPSCertificates.due(leaf, now: now) {
                kept[name] = leaf
            } else {
                kept[name] = Leaf(source: try authority.issue([name]), expires: now + InternalCA.leafValidity)
            }
        }
        self.leaves = kept
        sources += kept.keys.sorted().compactMap { kept[$0]?.source }
        return try TLSServer(sources: sources, fallback: settings.tlsDefault, ticketKeys: keys)
    }

    /// Some leaf has a third of its life left or less, or the ticket keys are due for rotation: build again.
    public func renewalDue(now: Int) -> Bool {
        self.leaves.values.contains { HTTPSCertificates.due($0, now: now) } || self.ticketKeys?.due(now: now) == true
    }

    static func due(_ leaf: Leaf, now: Int) -> Bool { leaf.expires - now <= InternalCA.leafValidity / 3 }
}

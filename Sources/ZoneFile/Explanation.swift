import ZoneModel

/// The text of `frontdoor explain`: which view a client gets, the records, the answer and the route.
package enum Explanation {
    package static func text(snapshot: Snapshot, name: DomainName, type: RecordType, client: IPAddress) -> String {
        var text = "question: \(name) \(type) from \(client)\n"
        guard let view = snapshot.view(for: client) else {
            return text + "view: none matches \(client); the query is REFUSED\n"
        }
        let matched = view.matchesAll ? "*" : view.networks.first { $0.contains(client) }?.description ?? "?"
        text += "view: \(view.name) (matched \(matched)\(view.recursion ? ", recursion allowed" : ""))\n"
        if let zone = view.zone(containing: name) {
            let copies = snapshot.settings.secondaries.filter { $0.view == view.name }
            if !copies.isEmpty {
                let serial: String = { if case .soa(let data) = zone.soa.data { "\(data.serial)" } else { "?" } }()
                let names = copies.map { "\($0.name) (\($0.address)\($0.key.map { ", key \($0.name)" } ?? ""))" }
                text +=
                    "zone \(zone.apex) serial \(serial), copied from this view by: \(names.joined(separator: ", "))\n"
            }
        }
        let outcome = view.lookup(name, type)
        func lines(_ records: [Record]) -> String { records.map { "  " + ZoneExporter.line($0) + "\n" }.joined() }
        switch outcome {
        case .answer(let records, let additional):
            text += "answer: NOERROR, \(records.count) record(s)\n" + lines(records)
            if !additional.isEmpty { text += "additional:\n" + lines(additional) }
        case .noData(let chain, let soa):
            text += "answer: NOERROR, no \(type) data (NODATA)\n" + lines(chain)
            text += "authority:\n" + lines([soa])
        case .nxDomain(let chain, let soa):
            text += "answer: NXDOMAIN\n" + lines(chain)
            text += "authority:\n" + lines([soa])
        case .referral(let chain, let nameServers, let glue):
            text += "answer: referral to a delegated zone\n" + lines(chain) + "authority:\n" + lines(nameServers)
            if !glue.isEmpty { text += "additional:\n" + lines(glue) }
        case .partial(let chain):
            text += "answer: NOERROR, the chain leaves the served zones\n" + lines(chain)
            if view.recursion { text += "  (the rest is resolved through the upstream resolvers)\n" }
        case .notAuthoritative:
            text +=
                view.recursion
                ? "answer: not in a served zone; forwarded to the upstream resolvers\n"
                : "answer: not in a served zone; REFUSED (view '\(view.name)' has no recursion)\n"
        case .chainTooLong(let chain):
            text += "answer: SERVFAIL, CNAME chain too long or looping\n" + lines(chain)
        }
        guard let site = snapshot.routes.route(host: name.hostDescription) else {
            return text + "proxy: no site for host \(name.hostDescription); the proxy answers 421\n"
        }
        guard site.isVisible(to: view) else {
            return text + "proxy: site \(site.name) is hidden from view '\(view.name)'; the proxy answers 403\n"
        }
        let backends = site.backends.map(\.description).joined(separator: " ")
        text += "proxy: site \(site.name) (\(site.balance.rawValue)"
        text += site.healthPath.map { ", health \($0)" } ?? ""
        return text + "): \(backends)\n"
    }
}

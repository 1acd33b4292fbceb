import ZoneModel

/// Model-wide checks that need no compiled data: views, zone boundaries, the proxy record and sites.
///
/// It also settles which `$PROXY` each site points at, so the compiler can rely on it.
package enum Validator {
    package static func validate(_ model: inout Model) -> Diagnostics {
        var diagnostics = Diagnostics()
        Validator.checkViews(model, &diagnostics)
        Validator.checkUpstreams(model, &diagnostics)
        Validator.checkZones(model, &diagnostics)
        Validator.checkProxies(model, &diagnostics)
        Validator.checkSites(&model, &diagnostics)
        return diagnostics
    }

    static func checkViews(_ model: Model, _ diagnostics: inout Diagnostics) {
        var seen: [String: SourceLocation] = [:]
        var earlier: [ViewDefinition] = []
        for view in model.views {
            if let first = seen[view.name] {
                diagnostics.append(
                    Diagnostic(
                        .duplicateView, "view '\(view.name)' is defined twice; the first is at \(first)",
                        at: view.location))
                continue
            }
            seen[view.name] = view.location
            if let catchAll = earlier.first(where: \.matchesAll) {
                diagnostics.append(
                    Diagnostic(
                        .unreachableView,
                        "view '\(view.name)' can never match: view '\(catchAll.name)' before it matches every client",
                        at: view.location))
            } else if !view.matchesAll, !view.networks.isEmpty {
                let shadowed = view.networks.allSatisfy { network in
                    earlier.contains { $0.networks.contains { $0.covers(network) } }
                }
                if shadowed {
                    let covering = earlier.filter { Validator.coversSome(of: view, $0) }.map { "'\($0.name)'" }
                    diagnostics.append(
                        Diagnostic(
                            .unreachableView,
                            "view '\(view.name)' can never match: earlier view \(covering.joined(separator: ", ")) covers every prefix it lists",
                            at: view.location))
                }
            }
            if view.matchesAll && view.recursion {
                diagnostics.append(
                    Diagnostic(
                        .openResolver,
                        "view '\(view.name)' matches every client and has recursion: that is an open resolver; limit recursion to LAN prefixes",
                        at: view.location))
            }
            if view.recursion && !view.matchesAll {
                Validator.checkRecursionReach(view, &diagnostics)
            }
            if view.recursion && model.settings.upstreams.isEmpty && !model.settings.upstreamsHadErrors {
                diagnostics.append(
                    Diagnostic(
                        .noUpstream,
                        "view '\(view.name)' has recursion but no 'upstream' resolver is configured; its clients could not resolve other names",
                        at: view.location))
            }
            earlier.append(view)
        }
        if !model.views.contains(where: \.matchesAll), let last = model.views.last {
            diagnostics.append(
                .warning(
                    .noCatchAllView,
                    "no view matches every client ('view NAME *'); clients outside all views are refused",
                    at: last.location))
        }
    }

    /// Recursion for prefixes that reach far beyond a home: `0.0.0.0/0`, `::/0` or anything as wide as a /8
    /// (IPv4) or /16 (IPv6) is an open resolver by another name (an error); any other public IPv4 prefix lets
    /// strangers there resolve through Frontdoor (a warning: fine only if it is the user's own network).
    /// IPv6 LANs have public (global) prefixes of their own, so a /32 or longer one is not questioned.
    static func checkRecursionReach(_ view: ViewDefinition, _ diagnostics: inout Diagnostics) {
        for network in view.networks {
            let v4 = network.address.isV4
            if network.prefixLength < (v4 ? 8 : 16) {
                diagnostics.append(
                    Diagnostic(
                        .openResolver,
                        "view '\(view.name)' has recursion for \(network), which covers "
                            + (network.prefixLength == 0 ? "the whole internet" : "a large part of the internet")
                            + ": that is an open resolver; limit recursion to LAN prefixes", at: view.location))
            } else if v4 && network.address.scope == .global {
                diagnostics.append(
                    .warning(
                        .openResolver,
                        "view '\(view.name)' has recursion for the public prefix \(network): anyone there can resolve "
                            + "through Frontdoor; fine only if that network is yours", at: view.location))
            }
        }
    }

    /// An upstream that is one of Frontdoor's own DNS listeners (or 127.0.0.1 / ::1 while a listener takes
    /// every address on that port) sends every forwarded question back to itself.
    static func checkUpstreams(_ model: Model, _ diagnostics: inout Diagnostics) {
        for upstream in model.settings.upstreams {
            let loop = model.settings.dnsListeners.contains { listener in
                listener.port == upstream.port
                    && (listener.address == upstream.address
                        || (listener.address.isUnspecified
                            && ["127.0.0.1", "::1"].contains(upstream.address.description)))
            }
            guard loop else { continue }
            diagnostics.append(
                Diagnostic(
                    .forwardingLoop,
                    "upstream \(upstream) is Frontdoor's own DNS listener: forwarded questions would come back to it "
                        + "(a forwarding loop); name the router's or the ISP's resolver",
                    at: model.settings.upstreamLocation ?? SourceLocation(file: "frontdoor.conf", line: 1, column: 1)))
        }
    }

    /// Whether `earlier` covers at least one prefix of `view`.
    static func coversSome(of view: ViewDefinition, _ earlier: ViewDefinition) -> Bool {
        view.networks.contains { network in earlier.networks.contains { $0.covers(network) } }
    }

    static func checkZones(_ model: Model, _ diagnostics: inout Diagnostics) {
        for zone in model.zones {
            for source in zone.records where !source.record.owner.isSubdomain(of: zone.apex) {
                diagnostics.append(
                    Diagnostic(
                        .outOfZone, "\(source.record.owner) is outside zone \(zone.apex)", at: source.location))
            }
            for source in zone.records where source.record.type == .soa && source.record.owner != zone.apex {
                diagnostics.append(
                    Diagnostic(
                        .soaNotAtApex, "SOA must be at the zone apex \(zone.apex), not \(source.record.owner)",
                        at: source.location))
            }
        }
    }

    static func checkProxies(_ model: Model, _ diagnostics: inout Diagnostics) {
        var names: [DomainName: SourceLocation] = [:]
        for zone in model.zones {
            guard let proxy = zone.proxy else { continue }
            if !proxy.name.isSubdomain(of: zone.apex) {
                diagnostics.append(
                    Diagnostic(.outOfZone, "$PROXY \(proxy.name) is outside zone \(zone.apex)", at: proxy.location))
            }
            if let first = names[proxy.name] {
                diagnostics.append(
                    Diagnostic(.duplicateProxy, "$PROXY \(proxy.name) is also declared at \(first)", at: proxy.location)
                )
            }
            names[proxy.name] = proxy.location
            if let clash = zone.records.first(where: { $0.record.owner == proxy.name }) {
                diagnostics.append(
                    Diagnostic(
                        .proxyHasRecords,
                        "\(proxy.name) is the $PROXY record; remove the \(clash.record.type) record written for it at \(clash.location)",
                        at: proxy.location))
            }
            let usesAuto = proxy.addresses.values.contains { $0.contains(.autoV4) || $0.contains(.autoV6) }
            if usesAuto && model.settings.wanSources.isEmpty {
                diagnostics.append(
                    Diagnostic(
                        .wanAutoWithoutDetection,
                        "$PROXY uses 'auto' but frontdoor.conf configures no WAN detection ('wan interface eth0', 'wan http URL', ...)",
                        at: proxy.location))
            }
            // The view the internet gets (it matches every client): an address there must be reachable from it.
            for view in model.views where view.matchesAll && !view.recursion {
                for case .fixed(let address) in proxy.addresses[view.name] ?? [] {
                    let why: String
                    switch address.scope {
                    case .global, .documentation: continue
                    case .privateNetwork: why = "a private address"
                    case .carrierGradeNAT: why = "a carrier-grade NAT address (100.64.0.0/10)"
                    case .special: why = "a loopback, link-local or reserved address"
                    }
                    diagnostics.append(
                        .warning(
                            .unroutableWAN,
                            "$PROXY \(proxy.name) gives view '\(view.name)' (every other client, the internet) \(address): "
                                + "\(why), unreachable from the internet; use the public address, or 'auto' with WAN "
                                + "detection", at: proxy.location))
                }
            }
            for view in model.views where proxy.addresses[view.name] == nil {
                diagnostics.append(
                    .warning(
                        .noProxy,
                        "$PROXY \(proxy.name) has no address for view '\(view.name)'; sites resolve to nothing there",
                        at: proxy.location))
            }
        }
    }

    static func checkSites(_ model: inout Model, _ diagnostics: inout Diagnostics) {
        let proxies = model.proxies
        var hosts: [DomainName: SourceLocation] = [:]
        for zoneIndex in model.zones.indices {
            let zone = model.zones[zoneIndex]
            var owners: [DomainName: SourceRecord] = [:]
            for source in zone.records where owners[source.record.owner] == nil { owners[source.record.owner] = source }
            for siteIndex in zone.sites.indices {
                let site = zone.sites[siteIndex]
                if !site.name.isSubdomain(of: zone.apex) {
                    diagnostics.append(
                        Diagnostic(.outOfZone, "site \(site.name) is outside zone \(zone.apex)", at: site.location))
                }
                // A site in error is left out of compilation (proxyName nil) so it causes no echoes there.
                var broken = false
                if let first = hosts[site.name] {
                    diagnostics.append(
                        Diagnostic(.duplicateSite, "site \(site.name) is also declared at \(first)", at: site.location))
                    broken = true
                } else {
                    hosts[site.name] = site.location
                }
                if proxies.contains(where: { $0.name == site.name }) {
                    diagnostics.append(
                        Diagnostic(
                            .siteHasRecords, "site \(site.name) has the name of the $PROXY record", at: site.location))
                    broken = true
                }
                // At the apex the site's addresses are flattened beside SOA and NS; elsewhere it owns its name.
                if site.name != zone.apex, let clash = owners[site.name] {
                    diagnostics.append(
                        Diagnostic(
                            .siteHasRecords,
                            "site \(site.name) also has a \(clash.record.type) record at \(clash.location); a site's name carries only its CNAME",
                            at: site.location))
                    broken = true
                }
                if site.backends.contains(where: \.tls) && !site.backendTLS.verify {
                    diagnostics.append(
                        .warning(
                            .badOption,
                            "site \(site.name): tls-verify=off: its https:// backends' certificates are not checked, so "
                                + "anyone on the path to them can read and change its traffic (give the backend's CA "
                                + "with ca=FILE instead where you can)",
                            at: site.location))
                }
                let proxyName: DomainName?
                if let named = site.proxyName {
                    proxyName = proxies.contains { $0.name == named } ? named : nil
                    if proxyName == nil {
                        diagnostics.append(
                            Diagnostic(
                                .noProxy, "site \(site.name) names proxy=\(named) but no $PROXY has that name",
                                at: site.location))
                    }
                } else if let own = zone.proxy {
                    proxyName = own.name
                } else if proxies.count == 1 {
                    proxyName = proxies[0].name
                } else {
                    proxyName = nil
                    diagnostics.append(
                        Diagnostic(
                            .noProxy,
                            proxies.isEmpty
                                ? "site \(site.name) needs a $PROXY record; add '$PROXY reverseproxy lan=ADDRESS wan=auto' to a zone"
                                : "site \(site.name): zone \(zone.apex) has no $PROXY and several exist; name one with proxy=NAME",
                            at: site.location))
                }
                model.zones[zoneIndex].sites[siteIndex].proxyName = broken ? nil : proxyName
            }
        }
    }
}

import ZoneModel

/// Model-wide checks that need no compiled data: views, zone boundaries, the proxy record and sites.
///
/// It also settles which `$PROXY` each site points at, so the compiler can rely on it.
package enum Validator {
    package static func validate(_ model: inout Model) -> Diagnostics {
        var diagnostics = Diagnostics()
        Validator.checkViews(model, &diagnostics)
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
            if view.recursion && model.settings.upstreams.isEmpty {
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

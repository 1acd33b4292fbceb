import Synchronization

/// The ACME HTTP-01 proofs the plain-HTTP listeners serve at `/.well-known/acme-challenge/TOKEN` (RFC 8555
/// §8.3), whatever site the Host names. Written by the certificate manager a few times per order; a request
/// reads the table only when its path starts with that prefix and some token is published.
public final class ChallengeTokens: Sendable {
    let tokens = Mutex<[[UInt8]: [UInt8]]>([:])
    let published = Atomic<Int>(0)

    public init() {}

    public func add(token: String, keyAuthorization: String) {
        let count = self.tokens.withLock { tokens in
            tokens[Array(token.utf8)] = Array(keyAuthorization.utf8)
            return tokens.count
        }
        self.published.store(count, ordering: .releasing)
    }

    public func remove(token: String) {
        let count = self.tokens.withLock { tokens in
            tokens[Array(token.utf8)] = nil
            return tokens.count
        }
        self.published.store(count, ordering: .releasing)
    }

    /// The key authorisation for a request target (`/.well-known/acme-challenge/TOKEN`, maybe with a query),
    /// when it names a published token.
    public func response(target: UnsafeRawBufferPointer) -> [UInt8]? {
        guard self.published.load(ordering: .acquiring) > 0 else { return nil }
        let prefix = HTTPSUpgrade.exempt
        let prefixLength = prefix.utf8CodeUnitCount
        guard target.count > prefixLength,
            UnsafeRawBufferPointer(rebasing: target[0..<prefixLength]).elementsEqual(
                UnsafeRawBufferPointer(start: prefix.utf8Start, count: prefixLength))
        else { return nil }
        let rest = target[prefixLength...]
        let token = Array(rest.prefix { $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") })
        return self.tokens.withLock { $0[token] }
    }
}

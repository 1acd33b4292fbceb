/// A place in a user's file: path as the user gave it, 1-based line and column.
public struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(self.file):\(self.line):\(self.column)" }

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.file, lhs.line, lhs.column) < (rhs.file, rhs.line, rhs.column)
    }
}

/// One problem found in the user's files, printed as `file:line:col: error: message`.
public struct Diagnostic: Error, Hashable, Sendable, CustomStringConvertible {
    /// How bad the problem is.
    public enum Severity: String, Sendable {
        /// The model is not published.
        case error
        /// The model is published; the user should look.
        case warning
    }

    public var severity: Severity
    public var code: DiagnosticCode
    public var message: String
    public var location: SourceLocation

    public init(_ code: DiagnosticCode, _ message: String, at location: SourceLocation, severity: Severity = .error) {
        self.severity = severity
        self.code = code
        self.message = message
        self.location = location
    }

    public static func warning(_ code: DiagnosticCode, _ message: String, at location: SourceLocation) -> Diagnostic {
        Diagnostic(code, message, at: location, severity: .warning)
    }

    public var description: String { "\(self.location): \(self.severity.rawValue): \(self.message)" }
}

/// Stable identifiers for every kind of diagnostic; fixtures and tests name these.
public enum DiagnosticCode: String, Sendable, CaseIterable {
    // Lexing and syntax.
    case unbalancedParenthesis = "unbalanced-parenthesis"
    case unterminatedString = "unterminated-string"
    case badEscape = "bad-escape"
    case unexpectedToken = "unexpected-token"
    case missingField = "missing-field"
    case unknownDirective = "unknown-directive"
    case unknownRecordType = "unknown-record-type"
    case unsupportedClass = "unsupported-class"
    case badRData = "bad-rdata"
    case badTTL = "bad-ttl"
    case badName = "bad-name"
    case badAddress = "bad-address"
    case badPort = "bad-port"
    case badBackend = "bad-backend"
    case badOption = "bad-option"
    case noOrigin = "no-origin"
    case fileUnreadable = "file-unreadable"
    case includeOutsideDirectory = "include-outside-directory"
    case includeLoop = "include-loop"
    // The config file.
    case unknownSetting = "unknown-setting"
    case badSetting = "bad-setting"
    case duplicateView = "duplicate-view"
    case unknownView = "unknown-view"
    case unreachableView = "unreachable-view"
    case noCatchAllView = "no-catch-all-view"
    case openResolver = "open-resolver"
    case tooManyViews = "too-many-views"
    case noUpstream = "no-upstream"
    case forwardingLoop = "forwarding-loop"
    case ignoredFile = "ignored-file"
    case unroutableWAN = "unroutable-wan"
    case wanAutoWithoutDetection = "wan-auto-without-detection"
    case secretMissing = "secret-missing"
    case secretExposed = "secret-exposed"
    case duplicateProvider = "duplicate-provider"
    case badSecondary = "bad-secondary"
    // Zone data.
    case duplicateZone = "duplicate-zone"
    case outOfZone = "out-of-zone"
    case cnameAndOtherData = "cname-and-other-data"
    case multipleCNAME = "multiple-cname"
    case cnameLoop = "cname-loop"
    case cnameChainTooLong = "cname-chain-too-long"
    case danglingTarget = "dangling-target"
    case soaNotAtApex = "soa-not-at-apex"
    case multipleSOA = "multiple-soa"
    case ttlMismatch = "ttl-mismatch"
    case duplicateRecord = "duplicate-record"
    case rdataTooLong = "rdata-too-long"
    // Proxy record and sites.
    case duplicateProxy = "duplicate-proxy"
    case noProxy = "no-proxy"
    case proxyHasRecords = "proxy-has-records"
    case duplicateSite = "duplicate-site"
    case siteHasRecords = "site-has-records"
    case hiddenSiteReference = "hidden-site-reference"
    case noNameServer = "no-name-server"
}

/// Everything a pass found, errors and warnings together, in file order.
public struct Diagnostics: Sendable {
    public private(set) var all: [Diagnostic] = []

    public init() {}

    public mutating func append(_ diagnostic: Diagnostic) {
        self.all.append(diagnostic)
    }

    public mutating func append(contentsOf other: Diagnostics) {
        self.all += other.all
    }

    public var hasErrors: Bool { self.all.contains { $0.severity == .error } }
    public var errors: [Diagnostic] { self.all.filter { $0.severity == .error } }
    public var warnings: [Diagnostic] { self.all.filter { $0.severity == .warning } }

    /// Sorted by file, line and column, as a compiler prints them.
    public var sorted: [Diagnostic] {
        self.all.enumerated().sorted { ($0.element.location, $0.offset) < ($1.element.location, $1.offset) }.map(
            \.element)
    }
}

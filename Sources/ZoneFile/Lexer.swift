import ZoneModel

/// One token of a master file: the raw bytes (escapes still in place) and where it started.
package struct Token: Sendable, Equatable {
    package var text: [UInt8]
    /// Written between double quotes; a quoted token is never a directive, number or `@`.
    package var quoted: Bool
    package var line: Int
    package var column: Int

    package init(text: [UInt8], quoted: Bool, line: Int, column: Int) {
        self.text = text
        self.quoted = quoted
        self.line = line
        self.column = column
    }

    package var string: String { String(decoding: self.text, as: UTF8.self) }

    /// The token as the user wrote it, for quoting in diagnostics.
    package var quotedForMessage: String {
        let text = self.string
        let clipped = text.count > 60 ? String(text.prefix(57)) + "..." : text
        return "'\(clipped)'"
    }

    package func location(in file: String) -> SourceLocation {
        SourceLocation(file: file, line: self.line, column: self.column)
    }

    package func matches(_ keyword: String) -> Bool {
        !self.quoted && self.text.count == keyword.utf8.count
            && zip(self.text, keyword.utf8).allSatisfy { DomainName.lowercase($0) == DomainName.lowercase($1) }
    }
}

/// One logical line (RFC 1035 §5.1): tokens up to a newline outside parentheses.
package struct Entry: Sendable, Equatable {
    package var tokens: [Token]
    /// The line began with white space: the owner is the previous one.
    package var ownerOmitted: Bool
    package var line: Int
    /// The lexer reported an error inside this entry; the parser skips it to avoid a second message.
    package var damaged: Bool
}

/// Splits master-file text into entries: comments, quoted strings, escapes and parentheses across lines.
///
/// It never traps on input: every byte sequence yields entries and diagnostics.
package struct Lexer {
    let bytes: [UInt8]
    let file: String
    let commentBytes: Set<UInt8>
    var index = 0
    var line = 1
    var lineStart = 0

    /// `commentBytes` is `;` for zone files; the config file also takes `#`.
    package init(bytes: [UInt8], file: String, commentBytes: Set<UInt8> = [UInt8(ascii: ";")]) {
        self.bytes = bytes
        self.file = file
        self.commentBytes = commentBytes
    }

    var column: Int { self.index - self.lineStart + 1 }

    /// Every entry of the file, with every problem found on the way.
    package static func entries(
        of bytes: [UInt8], file: String, commentBytes: Set<UInt8> = [UInt8(ascii: ";")],
        diagnostics: inout Diagnostics
    ) -> [Entry] {
        var lexer = Lexer(bytes: bytes, file: file, commentBytes: commentBytes)
        var entries: [Entry] = []
        while let entry = lexer.next(diagnostics: &diagnostics) { entries.append(entry) }
        return entries
    }

    /// The next non-empty entry, or nil at the end of the input.
    package mutating func next(diagnostics: inout Diagnostics) -> Entry? {
        while self.index < self.bytes.count {
            if let entry = self.readEntry(diagnostics: &diagnostics) { return entry }
        }
        return nil
    }

    mutating func newline() {
        self.index += 1
        self.line += 1
        self.lineStart = self.index
    }

    func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }

    /// Reads from the start of a line to the end of its entry; nil for a line with no tokens.
    mutating func readEntry(diagnostics: inout Diagnostics) -> Entry? {
        let startLine = self.line
        let ownerOmitted = self.index < self.bytes.count && self.isBlank(self.bytes[self.index])
        var tokens: [Token] = []
        var depth = 0
        var openings: [(line: Int, column: Int)] = []
        var damaged = false
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            if byte == UInt8(ascii: "\n") {
                self.newline()
                if depth == 0 { break }
                continue
            }
            if self.isBlank(byte) {
                self.index += 1
                continue
            }
            if self.commentBytes.contains(byte) {
                while self.index < self.bytes.count && self.bytes[self.index] != UInt8(ascii: "\n") { self.index += 1 }
                continue
            }
            if byte == UInt8(ascii: "(") {
                depth += 1
                openings.append((self.line, self.column))
                self.index += 1
                continue
            }
            if byte == UInt8(ascii: ")") {
                if depth == 0 {
                    diagnostics.append(
                        Diagnostic(.unbalancedParenthesis, "')' without a matching '('", at: self.here))
                    damaged = true
                } else {
                    depth -= 1
                    openings.removeLast()
                }
                self.index += 1
                continue
            }
            if byte == UInt8(ascii: "\"") {
                if let token = self.readQuoted(diagnostics: &diagnostics) {
                    tokens.append(token)
                } else {
                    damaged = true
                    // An unterminated string ends the entry at the end of its line.
                    if depth > 0 {
                        depth = 0
                        openings.removeAll()
                    }
                    break
                }
                continue
            }
            if byte < 0x20 || byte == 0x7F {
                diagnostics.append(
                    Diagnostic(
                        .unexpectedToken, "control character \\\(DomainName.threeDigits(byte)) in file", at: self.here))
                damaged = true
                self.index += 1
                continue
            }
            if let token = self.readPlain(diagnostics: &diagnostics) {
                tokens.append(token)
            } else {
                damaged = true
            }
        }
        if depth > 0, let opening = openings.first {
            diagnostics.append(
                Diagnostic(
                    .unbalancedParenthesis, "'(' is never closed",
                    at: SourceLocation(file: self.file, line: opening.line, column: opening.column)))
            damaged = true
        }
        guard !tokens.isEmpty else { return nil }
        return Entry(tokens: tokens, ownerOmitted: ownerOmitted, line: startLine, damaged: damaged)
    }

    var here: SourceLocation { SourceLocation(file: self.file, line: self.line, column: self.column) }

    /// An unquoted token: up to white space, a comment, a parenthesis or a quote; `\X` keeps X in the token.
    mutating func readPlain(diagnostics: inout Diagnostics) -> Token? {
        let line = self.line
        let column = self.column
        var text: [UInt8] = []
        var ok = true
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            if byte == UInt8(ascii: "\\") {
                guard self.index + 1 < self.bytes.count, self.bytes[self.index + 1] != UInt8(ascii: "\n") else {
                    diagnostics.append(Diagnostic(.badEscape, "'\\' at the end of a line", at: self.here))
                    self.index += 1
                    ok = false
                    break
                }
                text.append(byte)
                text.append(self.bytes[self.index + 1])
                self.index += 2
                continue
            }
            if byte == UInt8(ascii: "\n") || self.isBlank(byte) || self.commentBytes.contains(byte)
                || byte == UInt8(ascii: "(") || byte == UInt8(ascii: ")") || byte == UInt8(ascii: "\"")
            {
                break
            }
            if byte < 0x20 || byte == 0x7F { break }
            text.append(byte)
            self.index += 1
        }
        return ok ? Token(text: text, quoted: false, line: line, column: column) : nil
    }

    /// A quoted string: up to the closing quote on the same line; escapes stay in the text.
    mutating func readQuoted(diagnostics: inout Diagnostics) -> Token? {
        let line = self.line
        let column = self.column
        self.index += 1
        var text: [UInt8] = []
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            if byte == UInt8(ascii: "\"") {
                self.index += 1
                return Token(text: text, quoted: true, line: line, column: column)
            }
            if byte == UInt8(ascii: "\n") { break }
            if byte == UInt8(ascii: "\\") && self.index + 1 < self.bytes.count
                && self.bytes[self.index + 1] != UInt8(ascii: "\n")
            {
                text.append(byte)
                text.append(self.bytes[self.index + 1])
                self.index += 2
                continue
            }
            text.append(byte)
            self.index += 1
        }
        diagnostics.append(
            Diagnostic(
                .unterminatedString, "string is not closed before the end of the line",
                at: SourceLocation(file: self.file, line: line, column: column)))
        // Skip the rest of the line so the next entry starts cleanly.
        while self.index < self.bytes.count && self.bytes[self.index] != UInt8(ascii: "\n") { self.index += 1 }
        return nil
    }
}

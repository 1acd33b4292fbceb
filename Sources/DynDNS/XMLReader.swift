/// A small, strict XML reader for UPnP device descriptions and SOAP replies: elements (namespace prefixes
/// dropped), their text, the five predefined entities and numeric references; comments, processing
/// instructions and the declaration skipped; CDATA kept as text. Bounded: at most `maximumBytes` of input,
/// `maximumDepth` levels and `maximumElements` elements — anything beyond, or malformed, is an error, never a
/// crash. No DTDs (so no entity expansion attacks).
public struct XMLElement: Equatable, Sendable {
    /// The local name (`s:Envelope` → `Envelope`).
    public var name: String
    public var text: String
    public var children: [XMLElement]

    /// The first descendant named `name`, depth first.
    public func first(_ name: String) -> XMLElement? {
        for child in self.children {
            if child.name == name { return child }
            if let found = child.first(name) { return found }
        }
        return nil
    }

    /// Every descendant named `name`, in document order.
    public func all(_ name: String) -> [XMLElement] {
        var found: [XMLElement] = []
        for child in self.children {
            if child.name == name { found.append(child) }
            found += child.all(name)
        }
        return found
    }

    /// The trimmed text of the first direct child named `name`.
    public func value(_ name: String) -> String? {
        self.children.first { $0.name == name }.map { $0.text.trimmingSpaces }
    }
}

public struct XMLError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

public enum XMLReader {
    public static let maximumBytes = 256 * 1024
    public static let maximumDepth = 32
    public static let maximumElements = 4096

    /// The document element of `bytes`.
    public static func parse(_ bytes: [UInt8]) throws(XMLError) -> XMLElement {
        guard bytes.count <= XMLReader.maximumBytes else {
            throw XMLError("larger than \(XMLReader.maximumBytes / 1024) KiB")
        }
        var index = 0
        var stack: [XMLElement] = []
        var root: XMLElement?
        var elements = 0
        func starts(_ text: String) -> Bool {
            let pattern = Array(text.utf8)
            return index + pattern.count <= bytes.count && Array(bytes[index..<(index + pattern.count)]) == pattern
        }
        func skip(past end: String) throws(XMLError) {
            let pattern = Array(end.utf8)
            while index + pattern.count <= bytes.count {
                if Array(bytes[index..<(index + pattern.count)]) == pattern {
                    index += pattern.count
                    return
                }
                index += 1
            }
            throw XMLError("unterminated construct (no \(end))")
        }
        func localName(_ raw: [UInt8]) -> String {
            let name = raw.lastIndex(of: UInt8(ascii: ":")).map { Array(raw[($0 + 1)...]) } ?? raw
            return String(decoding: name, as: UTF8.self)
        }
        while index < bytes.count {
            if bytes[index] != UInt8(ascii: "<") {
                let start = index
                while index < bytes.count && bytes[index] != UInt8(ascii: "<") { index += 1 }
                if stack.isEmpty {
                    // White space (and a byte-order mark) only, compared as bytes: "\r\n" is one Character.
                    var rest = bytes[start..<index]
                    if rest.starts(with: [0xEF, 0xBB, 0xBF]) { rest = rest.dropFirst(3) }
                    guard rest.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }) else {
                        throw XMLError("text outside the document element")
                    }
                } else {
                    stack[stack.count - 1].text += try XMLReader.decodeText(Array(bytes[start..<index]))
                }
                continue
            }
            if starts("<!--") {
                try skip(past: "-->")
            } else if starts("<![CDATA[") {
                index += 9
                let start = index
                try skip(past: "]]>")
                guard !stack.isEmpty else { throw XMLError("CDATA outside the document element") }
                stack[stack.count - 1].text += String(decoding: bytes[start..<(index - 3)], as: UTF8.self)
            } else if starts("<?") {
                try skip(past: "?>")
            } else if starts("<!") {
                throw XMLError("document type declarations are not accepted")
            } else if starts("</") {
                index += 2
                let start = index
                while index < bytes.count && bytes[index] != UInt8(ascii: ">") { index += 1 }
                guard index < bytes.count else { throw XMLError("unterminated end tag") }
                let name = localName(Array(bytes[start..<index]).filter { $0 != 32 && $0 != 9 && $0 != 10 && $0 != 13 })
                index += 1
                guard let open = stack.popLast() else { throw XMLError("end tag </\(name)> without a start tag") }
                guard open.name == name else { throw XMLError("</\(name)> closes <\(open.name)>") }
                if stack.isEmpty {
                    guard root == nil else { throw XMLError("more than one document element") }
                    root = open
                } else {
                    stack[stack.count - 1].children.append(open)
                }
            } else {
                index += 1
                let start = index
                var quote: UInt8?
                while index < bytes.count {
                    let byte = bytes[index]
                    if let open = quote {
                        if byte == open { quote = nil }
                    } else if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                        quote = byte
                    } else if byte == UInt8(ascii: ">") {
                        break
                    }
                    index += 1
                }
                guard index < bytes.count else { throw XMLError("unterminated start tag") }
                var tag = Array(bytes[start..<index])
                index += 1
                let empty = tag.last == UInt8(ascii: "/")
                if empty { tag.removeLast() }
                let nameBytes = Array(tag.prefix { $0 != 32 && $0 != 9 && $0 != 10 && $0 != 13 })
                guard !nameBytes.isEmpty,
                    nameBytes.allSatisfy({ $0 > 32 && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: "&") })
                else { throw XMLError("bad element name") }
                elements += 1
                guard elements <= XMLReader.maximumElements else {
                    throw XMLError("more than \(XMLReader.maximumElements) elements")
                }
                guard root == nil else { throw XMLError("more than one document element") }
                let element = XMLElement(name: localName(nameBytes), text: "", children: [])
                if empty {
                    if stack.isEmpty {
                        root = element
                    } else {
                        stack[stack.count - 1].children.append(element)
                    }
                } else {
                    guard stack.count < XMLReader.maximumDepth else {
                        throw XMLError("nested deeper than \(XMLReader.maximumDepth) levels")
                    }
                    stack.append(element)
                }
            }
        }
        guard stack.isEmpty else { throw XMLError("<\(stack[stack.count - 1].name)> is never closed") }
        guard let root else { throw XMLError("no document element") }
        return root
    }

    /// Text with its entity and character references replaced.
    static func decodeText(_ bytes: [UInt8]) throws(XMLError) -> String {
        guard bytes.contains(UInt8(ascii: "&")) else { return String(decoding: bytes, as: UTF8.self) }
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "&") else {
                out.append(bytes[index])
                index += 1
                continue
            }
            guard let semicolon = bytes[index...].firstIndex(of: UInt8(ascii: ";")), semicolon - index <= 10 else {
                throw XMLError("an unterminated entity reference")
            }
            let name = String(decoding: bytes[(index + 1)..<semicolon], as: UTF8.self)
            switch name {
            case "amp": out.append(UInt8(ascii: "&"))
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "quot": out.append(UInt8(ascii: "\""))
            case "apos": out.append(UInt8(ascii: "'"))
            default:
                let number: UInt32?
                if name.hasPrefix("#x") {
                    number = UInt32(name.dropFirst(2), radix: 16)
                } else if name.hasPrefix("#") {
                    number = UInt32(name.dropFirst())
                } else {
                    number = nil
                }
                guard let number, number > 0, let scalar = Unicode.Scalar(number) else {
                    throw XMLError("unknown entity &\(name);")
                }
                out += Array(String(Character(scalar)).utf8)
            }
            index = semicolon + 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

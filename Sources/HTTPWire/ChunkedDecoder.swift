import ZoneModel

/// Decodes a chunked body (RFC 9112 §7.1) incrementally: bytes in, data ranges out, any split of the input.
///
/// It refuses what two parsers could read differently: sizes that are not plain hex, over 16 digits, with
/// white space or a sign; a chunk not followed by CRLF; bare LF or CR; control bytes in extensions.
public struct ChunkedDecoder: Sendable {
    /// Where in the chunked syntax the decoder stands.
    enum State: Equatable, Sendable {
        /// Reading hex digits of a chunk size.
        case size(digits: Int, value: UInt64)
        /// After `;`: skipping a chunk extension up to CRLF.
        case extensionText(value: UInt64)
        /// Expecting the LF of the size line's CRLF.
        case sizeLF(value: UInt64)
        /// Inside chunk data, this many octets left.
        case data(remaining: UInt64)
        /// Expecting the CR, then the LF, after chunk data.
        case dataCR
        case dataLF
        /// After the last chunk: trailer lines until an empty one. `lineLength` counts the current line.
        case trailer(lineLength: Int)
        case trailerLF(lineLength: Int)
        /// The body is complete.
        case done
    }

    var state: State = .size(digits: 0, value: 0)
    /// Trailer bytes seen, bounded like a header section.
    var trailerBytes = 0
    public static let maximumTrailerBytes = 64 * 1024

    public init() {}

    public var isComplete: Bool { self.state == .done }

    /// Consumes `input`; calls `data` with each run of body octets (offsets into `input`). Returns how many
    /// octets it consumed: all of them, or fewer when the body ended inside `input` (the rest is the next
    /// request).
    public mutating func feed(_ input: UnsafeRawBufferPointer, data: (Range<Int>) -> Void) throws(HTTPRequestError)
        -> Int
    {
        var index = 0
        while index < input.count {
            let byte = input[index]
            switch self.state {
            case .size(let digits, let value):
                if let digit = hexDigitValue(byte) {
                    guard digits < 16 else { throw .badRequest("chunk size too large") }
                    self.state = .size(digits: digits + 1, value: value << 4 | UInt64(digit))
                } else if digits > 0 && byte == 13 {
                    self.state = .sizeLF(value: value)
                } else if digits > 0 && byte == 59 {
                    self.state = .extensionText(value: value)
                } else {
                    throw .badRequest("bad chunk size")
                }
                index += 1
            case .extensionText(let value):
                if byte == 13 {
                    self.state = .sizeLF(value: value)
                } else if (byte < 32 && byte != 9) || byte == 127 {
                    throw .badRequest("bad chunk extension")
                }
                index += 1
            case .sizeLF(let value):
                guard byte == 10 else { throw .badRequest("bare CR in chunk size line") }
                self.state = value == 0 ? .trailer(lineLength: 0) : .data(remaining: value)
                index += 1
            case .data(let remaining):
                let take = Int(min(UInt64(input.count - index), remaining))
                data(index..<(index + take))
                index += take
                self.state = remaining == UInt64(take) ? .dataCR : .data(remaining: remaining - UInt64(take))
            case .dataCR:
                guard byte == 13 else { throw .badRequest("chunk data not followed by CRLF") }
                self.state = .dataLF
                index += 1
            case .dataLF:
                guard byte == 10 else { throw .badRequest("chunk data not followed by CRLF") }
                self.state = .size(digits: 0, value: 0)
                index += 1
            case .trailer(let lineLength):
                self.trailerBytes += 1
                guard self.trailerBytes <= ChunkedDecoder.maximumTrailerBytes else { throw .headersTooLarge }
                if byte == 13 {
                    self.state = .trailerLF(lineLength: lineLength)
                } else if byte == 10 || byte == 0 {
                    throw .badRequest("bad trailer line")
                } else {
                    self.state = .trailer(lineLength: lineLength + 1)
                }
                index += 1
            case .trailerLF(let lineLength):
                guard byte == 10 else { throw .badRequest("bare CR in trailer") }
                index += 1
                if lineLength == 0 {
                    self.state = .done
                    return index
                }
                self.state = .trailer(lineLength: 0)
            case .done:
                return index
            }
        }
        return index
    }
}

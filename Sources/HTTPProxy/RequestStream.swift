import HTTPWire

/// Turns the bytes a client sends into request events, in order: a head, its body in pieces, its end — then
/// the next pipelined request. Pure: the proxy loop feeds it what `read` returned and acts on the events.
public struct RequestStream: Sendable {
    /// What the stream found in the bytes fed to it.
    public enum Event: Equatable, Sendable {
        /// A complete head; `bytes` is a copy of it (the loop rewrites it for the backend).
        case head(HTTPRequestHead, bytes: [UInt8])
        /// Body octets of the current request, already de-chunked when it was chunked.
        case body([UInt8])
        /// The current request's body is complete.
        case end
        /// The client broke the protocol: answer `status` and close.
        case error(HTTPRequestError)
    }

    /// Where the stream stands.
    enum State: Sendable {
        /// Waiting for (the rest of) a head; `pending` holds what arrived so far.
        case head
        case fixedBody(remaining: UInt64)
        case chunkedBody(ChunkedDecoder)
        /// After an error nothing more is read.
        case failed
    }

    var state: State = .head
    var pending: [UInt8] = []
    /// A proxy answers pipelined requests in order, one at a time: with this set the stream stops after each
    /// request's end and keeps what follows until `resume`.
    let pausesAfterEachRequest: Bool
    public private(set) var isPaused = false

    public init(pausesAfterEachRequest: Bool = false) {
        self.pausesAfterEachRequest = pausesAfterEachRequest
    }

    /// Octets held back (a partial head, or requests behind a paused one): the loop stops reading when
    /// this grows past a bound.
    public var bufferedCount: Int { self.pending.count }

    /// Continues after a pause with the octets held back.
    public mutating func resume() -> [Event] {
        guard self.isPaused else { return [] }
        self.isPaused = false
        let held = self.pending
        self.pending = []
        return self.feed(held)
    }

    /// Hands over everything held back and stops parsing (the connection became a tunnel).
    public mutating func takeHeld() -> [UInt8] {
        let held = self.pending
        self.pending = []
        self.state = .failed
        return held
    }

    /// Marks the end of a request; with pausing on, holds back `rest` and says to stop.
    mutating func ended(rest: ArraySlice<UInt8>) -> Bool {
        guard self.pausesAfterEachRequest else { return false }
        self.isPaused = true
        self.pending = Array(rest)
        return true
    }

    /// Consumes `input`, returning the events it completes. Head bytes are buffered until the head is whole;
    /// body bytes pass straight through.
    public mutating func feed(_ input: [UInt8]) -> [Event] {
        var events: [Event] = []
        if self.isPaused {
            self.pending += input
            return events
        }
        var input = input[...]
        while true {
            switch self.state {
            case .failed:
                return events
            case .head:
                if input.isEmpty { return events }
                let mayComplete = input.contains(10)
                if self.pending.isEmpty {
                    self.pending = Array(input)
                } else {
                    self.pending += input
                }
                input = []
                // A head can only complete with a line feed: do not re-parse for bytes that carry none, so a
                // client trickling a byte at a time costs nothing (a re-parse per line is bounded by the
                // 100-field and 64 KiB limits).
                guard mayComplete else {
                    if self.pending.count > HTTPRequestParser.maximumRequestLine + HTTPRequestParser.maximumHeaderBytes
                    {
                        self.state = .failed
                        events.append(.error(.headersTooLarge))
                    }
                    return events
                }
                let result = self.pending.withUnsafeBytes { buffer in
                    Result { () throws(HTTPRequestError) in try HTTPRequestParser.parse(buffer) }
                }
                switch result {
                case .failure(let error):
                    self.state = .failed
                    events.append(.error(error))
                    return events
                case .success(nil):
                    return events
                case .success(let head?):
                    let bytes = head.length == self.pending.count ? self.pending : Array(self.pending[0..<head.length])
                    events.append(.head(head, bytes: bytes))
                    input = self.pending[head.length...]
                    self.pending = []
                    switch head.framing {
                    case .none:
                        events.append(.end)
                        // Keep parsing what follows: a pipelined request.
                        self.state = .head
                        if self.ended(rest: input) || input.isEmpty { return events }
                    case .contentLength(let length):
                        self.state = .fixedBody(remaining: length)
                    case .chunked:
                        self.state = .chunkedBody(ChunkedDecoder())
                    }
                }
            case .fixedBody(let remaining):
                if input.isEmpty { return events }
                let take = Int(min(UInt64(input.count), remaining))
                events.append(.body(Array(input.prefix(take))))
                input = input.dropFirst(take)
                if UInt64(take) == remaining {
                    events.append(.end)
                    self.state = .head
                    if self.ended(rest: input) { return events }
                } else {
                    self.state = .fixedBody(remaining: remaining - UInt64(take))
                }
            case .chunkedBody(var decoder):
                if input.isEmpty { return events }
                let bytes = Array(input)
                var data: [UInt8] = []
                let result = bytes.withUnsafeBytes { buffer in
                    Result { () throws(HTTPRequestError) -> Int in try decoder.feed(buffer) { data += bytes[$0] } }
                }
                switch result {
                case .failure(let error):
                    self.state = .failed
                    events.append(.error(error))
                    return events
                case .success(let used):
                    if !data.isEmpty { events.append(.body(data)) }
                    input = input.dropFirst(used)
                    if decoder.isComplete {
                        events.append(.end)
                        self.state = .head
                        if self.ended(rest: input) { return events }
                    } else {
                        self.state = .chunkedBody(decoder)
                    }
                }
            }
        }
    }
}

/// Builds a head into a new array of known maximum size with plain copies: each piece is one `memcpy`
/// instead of a generic `append(contentsOf:)` (the heads are built twice per proxied request).
///
/// `capacity` must bound the output; going past it stops the program rather than write out of bounds.
struct HeadWriter {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    var count = 0

    /// Runs `build` on a writer over `capacity` uninitialised bytes and returns what it wrote.
    static func build(capacity: Int, _ build: (inout HeadWriter) -> Void) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            guard let base = buffer.baseAddress else {
                initialized = 0
                return
            }
            var writer = HeadWriter(base: base, capacity: capacity)
            build(&writer)
            initialized = writer.count
        }
    }

    @inline(__always)
    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        precondition(self.count + bytes.count <= self.capacity, "head larger than its bound")
        (self.base + self.count).initialize(from: source.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        self.count += bytes.count
    }

    @inline(__always)
    mutating func write(_ text: StaticString) {
        self.write(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { self.write($0) }
    }

    @inline(__always)
    mutating func crlf() {
        self.write("\r\n")
    }
}

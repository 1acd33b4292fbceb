import CSys
import ZoneModel

#if canImport(Glibc)
    import Glibc
#endif

/// Datagrams in and out in batches (recvmmsg/sendmmsg): one system call for many queries.
public final class UDPBatch {
    @usableFromInline let batch: OpaquePointer
    public let count: Int
    public let bufferSize: Int
    /// The batch's memory (see `csys_batch_layout`), read directly for every datagram.
    @usableFromInline let inBase: UnsafeMutablePointer<UInt8>
    @usableFromInline let outBase: UnsafeMutablePointer<UInt8>
    @usableFromInline let peers: UnsafePointer<sockaddr_storage>
    @usableFromInline let lengths: UnsafePointer<Int32>

    public init?(count: Int = 64, bufferSize: Int = 4096) {
        guard let batch = csys_batch_create(Int32(count), Int32(bufferSize)) else { return nil }
        var inBase: UnsafeMutablePointer<UInt8>? = nil
        var outBase: UnsafeMutablePointer<UInt8>? = nil
        var peers: UnsafePointer<sockaddr_storage>? = nil
        var lengths: UnsafePointer<Int32>? = nil
        csys_batch_layout(batch, &inBase, &outBase, &peers, &lengths)
        guard let inBase, let outBase, let peers, let lengths else {
            csys_batch_destroy(batch)
            return nil
        }
        self.batch = batch
        self.count = count
        self.bufferSize = bufferSize
        self.inBase = inBase
        self.outBase = outBase
        self.peers = peers
        self.lengths = lengths
    }

    deinit { csys_batch_destroy(self.batch) }

    /// Receives without blocking; the number of datagrams (0 when none).
    @inlinable
    public func receive(_ fd: Int32) -> Int {
        Int(max(0, csys_batch_receive(self.batch, fd)))
    }

    /// Sleeps until datagrams arrive (or the socket's receive timeout passes, returning 0), then takes what
    /// is queued, up to the batch size: the fewest system calls per datagram when one thread owns the socket.
    @inlinable
    public func receiveWaiting(_ fd: Int32) -> Int {
        Int(max(0, csys_batch_receive_wait(self.batch, fd)))
    }

    /// Bounds how long `receiveWaiting` sleeps on `fd`.
    public static func setReceiveTimeout(_ fd: Int32, milliseconds: Int32) {
        _ = csys_set_receive_timeout(fd, milliseconds)
    }

    /// Datagram `index`'s bytes; empty when it was too large for the buffer.
    @inlinable
    public func input(_ index: Int) -> UnsafeRawBufferPointer {
        let length = Int(self.lengths[index])
        guard length > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: self.inBase + index * self.bufferSize, count: length)
    }

    @inlinable
    public func peer(_ index: Int) -> UnsafePointer<sockaddr_storage> { self.peers + index }

    /// The address datagram `index` was sent to, when the socket reports it (wildcard listeners).
    public func local(_ index: Int) -> LocalAddress {
        var address = LocalAddress()
        address.family = withUnsafeMutableBytes(of: &address.bytes) { raw in
            csys_batch_local(self.batch, Int32(index), raw.baseAddress?.assumingMemoryBound(to: UInt8.self))
        }
        return address
    }

    @inlinable
    public func output(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: self.outBase + index * self.bufferSize, count: self.bufferSize)
    }

    /// Queues datagram `index`'s reply of `length` bytes.
    @inlinable
    public func reply(_ index: Int, length: Int) {
        csys_batch_reply(self.batch, Int32(index), Int32(length))
    }

    /// Sends the queued replies from `fd`.
    @inlinable
    public func flush(_ fd: Int32) {
        _ = csys_batch_send(self.batch, fd)
    }
}

/// The local address a datagram arrived at (family 0 when unknown), so a late reply leaves from it too.
public struct LocalAddress: Sendable {
    public var family: Int32 = 0
    public var bytes: (UInt64, UInt64) = (0, 0)

    public init() {}
}

extension Sockets {
    /// Sends one datagram to `peer` from `local` (or wherever routing says when `local` is unknown).
    public static func send(_ fd: Int32, _ data: [UInt8], to peer: sockaddr_storage, from local: LocalAddress) {
        var peer = peer
        var local = local
        _ = data.withUnsafeBytes { buffer in
            withUnsafeBytes(of: &local.bytes) { localBytes in
                csys_send_from(
                    fd, buffer.baseAddress, buffer.count, &peer, local.family,
                    localBytes.baseAddress?.assumingMemoryBound(to: UInt8.self))
            }
        }
    }
}

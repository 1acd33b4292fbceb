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

    public init?(count: Int = 64, bufferSize: Int = 4096) {
        guard let batch = csys_batch_create(Int32(count), Int32(bufferSize)) else { return nil }
        self.batch = batch
        self.count = count
        self.bufferSize = bufferSize
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
        let length = Int(csys_batch_in_length(self.batch, Int32(index)))
        guard length > 0, let base = csys_batch_in(self.batch, Int32(index)) else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(start: base, count: length)
    }

    @inlinable
    public func peer(_ index: Int) -> UnsafePointer<sockaddr_storage> {
        csys_batch_peer(self.batch, Int32(index))
    }

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
        UnsafeMutableRawBufferPointer(start: csys_batch_out(self.batch, Int32(index)), count: self.bufferSize)
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

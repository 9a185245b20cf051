import Glibc
import Logging
import RoomRingCore

/// After `101` (or any answer): bytes move both ways untouched, with backpressure and half-close.
///
/// Backpressure: a side is read only while its partner has nothing pending. A read that the partner cannot take
/// whole leaves the rest pending (at most one read, 64 KiB) and reading stops until a writable edge drains it, so
/// a fast sender to a slow reader costs the proxy one buffer, and the kernel's socket buffers hold the rest.
extension TunnelLoop {
    /// Splices a tunnel whose shard answered: `firstBytes` (the response head and whatever followed it) go to the
    /// client, and the tunnel forgets everything it needed to get here.
    func splice(_ tunnel: Tunnel, firstBytes: [UInt8]) {
        tunnel.phase = .spliced
        tunnel.client.pending = firstBytes
        tunnel.setup = nil
        proxy.tunnelOpened(tunnel.shard)
        logger.debug("tunnel opened", metadata: ["shard": "\(tunnel.shard)"])
        serviceSpliced(tunnel, flushClient: true, flushBackend: false)
    }

    /// Moves whatever can move on a spliced tunnel: pending bytes first, then fresh reads both ways.
    func serviceSpliced(_ tunnel: Tunnel, flushClient: Bool, flushBackend: Bool) {
        if flushClient, Self.flush(&tunnel.client) != nil { return closeTunnel(tunnel) }
        if flushBackend, Self.flush(&tunnel.backend) != nil { return closeTunnel(tunnel) }
        var moved = false
        guard Self.pump(from: &tunnel.client, to: &tunnel.backend, scratch: scratch, moved: &moved),
            Self.pump(from: &tunnel.backend, to: &tunnel.client, scratch: scratch, moved: &moved)
        else { return closeTunnel(tunnel) }
        if moved { tunnel.active = true }
        // Both inputs ended and nothing is left to deliver: close, which ends both outputs without two shutdowns.
        if tunnel.client.inputEnded, tunnel.backend.inputEnded, !tunnel.client.hasPending, !tunnel.backend.hasPending {
            return closeTunnel(tunnel)
        }
        // Half-close: once a side's input ended and the partner took everything, the partner's output ends too.
        if tunnel.client.inputEnded, !tunnel.backend.hasPending, !tunnel.backend.outputShut {
            tunnel.backend.outputShut = true
            shutdown(tunnel.backend.fd, Int32(SHUT_WR))
        }
        if tunnel.backend.inputEnded, !tunnel.client.hasPending, !tunnel.client.outputShut {
            tunnel.client.outputShut = true
            shutdown(tunnel.client.fd, Int32(SHUT_WR))
        }
    }

    /// Reads `source` and writes to `destination` until the source is drained, its input ends, or the destination
    /// is full (it then has pending bytes). `record` sees every chunk read (a request body kept for a retry).
    /// Returns false on a socket error.
    static func pump(from source: inout Tunnel.Side, to destination: inout Tunnel.Side,
                     scratch: UnsafeMutableRawBufferPointer, moved: inout Bool,
                     record: ((UnsafeRawBufferPointer) -> Void)? = nil) -> Bool {
        guard !destination.hasPending else { return true }
        while source.readable, !source.inputEnded {
            let count = read(source.fd, scratch.baseAddress, scratch.count)
            if count > 0 {
                moved = true
                let chunk = UnsafeRawBufferPointer(rebasing: scratch[0..<count])
                record?(chunk)
                // A short read emptied the socket; a later arrival raises a new edge. After the peer's FIN keep
                // reading until 0, since no further edge will come.
                if count < scratch.count, !source.peerClosing { source.readable = false }
                let sent = send(destination.fd, chunk.baseAddress, count, Int32(MSG_NOSIGNAL))
                if sent < 0, errno != EAGAIN, errno != EWOULDBLOCK, errno != EINTR { return false }
                let written = max(0, sent)
                if written < count {
                    destination.pending = Array(chunk[written...])
                    destination.pendingStart = 0
                    return true
                }
            } else if count == 0 {
                source.inputEnded = true
                source.readable = false
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                source.readable = false
            } else if errno != EINTR {
                return false
            }
        }
        return true
    }

    /// Writes what is pending for `side` until it is all taken or the socket is full; the errno of a failed write.
    static func flush(_ side: inout Tunnel.Side) -> Int32? {
        while side.hasPending {
            let sent = side.pending.withUnsafeBytes { bytes in
                send(side.fd, bytes.baseAddress! + side.pendingStart, bytes.count - side.pendingStart, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
                return errno
            }
            side.pendingStart += sent
        }
        side.pending = []
        side.pendingStart = 0
        return nil
    }
}

import Glibc
import RoomRingCore

/// One client connection and, once routed, its shard connection. Owned by one ``TunnelLoop`` and touched only on
/// its thread; the loop's methods hold the logic, this is the state.
///
/// An idle spliced tunnel is what a proxy holds most of, so it is kept small: the two descriptors, per-side flags,
/// the shard id, and nothing else. Everything needed only until the splice lives in ``Setup`` and is released then.
final class Tunnel {
    enum Phase {
        /// Reading the request head (bounded by the head timeout).
        case readingHead
        /// Looking up the shard's name (bounded by the connect timeout).
        case resolving
        /// Fetching a newer ring from a shard that answered `421`, before the one retry.
        case fetchingRing
        /// Connecting to the shard; the head waits in `toBackend`.
        case connecting
        /// The head went out; reading the shard's response head.
        case awaitingResponse
        /// Bytes flow both ways untouched.
        case spliced
        case closed
    }

    /// One direction's state at one descriptor.
    struct Side {
        let fd: Int32
        /// An edge said bytes (or the end) may be waiting, and no read has drained them since.
        var readable = false
        /// The peer signalled its end (`EPOLLRDHUP`): read until 0 even after a short read.
        var peerClosing = false
        /// A read returned 0.
        var inputEnded = false
        /// Bytes accepted from the other side that this descriptor has not taken yet.
        var pending: [UInt8] = []
        var pendingStart = 0
        /// `shutdown(SHUT_WR)` was sent: the other side's input ended and everything was delivered.
        var outputShut = false

        init(fd: Int32) { self.fd = fd }

        var hasPending: Bool { pendingStart < pending.count }
    }

    /// The loop's number for this tunnel: a message posted from another thread finds it by descriptor and checks
    /// this, since a descriptor number can be reused.
    let serial: UInt64
    var phase = Phase.readingHead
    var client: Side
    var backend = Side(fd: -1)
    /// Present until the splice.
    var setup: Setup?
    /// The shard, once routed (for per-shard tunnel counts).
    var shard = ""
    /// Bytes moved since the last idle sweep.
    var active = false
    var quietSweeps: UInt8 = 0

    init(serial: UInt64, client fd: Int32, peer: sockaddr_storage, limits: RequestHeadParser.Limits) {
        self.serial = serial
        self.client = Side(fd: fd)
        self.setup = Setup(peer: peer, limits: limits)
    }
}

/// What a tunnel needs from accept to splice.
final class Setup {
    var parser: RequestHeadParser
    let peer: sockaddr_storage
    var head: RequestHeadFacts?
    /// The bytes the head was parsed from (and any after it), forwarded as they are when nothing in it changes.
    var received: [UInt8] = []
    /// Bytes after the head that arrived with it (a body, or frames sent eagerly).
    var extra: [UInt8] = []
    /// `X-Request-ID`: the client's when it is safe, else a new one.
    var requestID = ""
    /// Epoch of the ring the current attempt was routed with (a 421 is judged against it, not the latest ring).
    var routedEpoch: UInt64 = 0
    var retried = false
    /// Numbers connect attempts, so a stale connect deadline is ignored.
    var attempt = 0
    /// A request body flows to the shard before its answer.
    var streamingBody = false
    /// Body bytes sent to a shard, kept so a retry after `421` can send them again; nil once the body outgrew
    /// ``maxReplayBody`` (such a request is not retried: the client gets the `421`).
    var sentBody: [UInt8]? = []
    /// The shard's answer so far, until its head is complete.
    var response: [UInt8] = []
    /// Largest request body kept for a retry (a publish is at most the shards' message limit, 64 KiB by default).
    static let maxReplayBody = 64 * 1024
    /// Largest response head read before splicing.
    static let maxResponseHead = 16 * 1024

    init(peer: sockaddr_storage, limits: RequestHeadParser.Limits) {
        self.peer = peer
        self.parser = RequestHeadParser(limits: limits)
    }

    func recordSent(_ bytes: some Collection<UInt8>) {
        guard !bytes.isEmpty, sentBody != nil else { return }
        sentBody?.append(contentsOf: bytes)
        if let count = sentBody?.count, count > Self.maxReplayBody { sentBody = nil }
    }
}

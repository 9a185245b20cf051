import NIOCore
import RoomRingCore

/// A room's local state in pub/sub mode, on the room's home loop. The authoritative seq and history are in Redis;
/// this is where the shard stands in the room's stream and who is waiting for what.
final class PubSubRoomState {
    enum Phase {
        /// Not subscribed (no local members): nothing here is current.
        case idle
        /// `SUBSCRIBE` sent; joins and chats wait for the confirmation.
        case subscribing
        /// Subscribed; reading the room's current seq from Redis.
        case syncing
        /// In step with the room's stream: live messages are delivered in seq order.
        case serving
    }

    var phase = Phase.idle
    /// Seq of the last message delivered to local members (or the baseline read at subscribe).
    var lastSeq: UInt64 = 0
    /// Frames delivered since the baseline, for resumes that do not need Redis.
    var recent: FrameLog
    /// Live messages that arrived ahead of a gap, by seq.
    var ahead: [UInt64: PubSubBus.Published] = [:]
    /// Whether a catch-up read of the stream is in flight.
    var catchingUp = false
    /// Another catch-up was asked for while one was in flight.
    var catchUpAgain = false
    /// Joins and chats held until the room is in step.
    var parkedJoins: [(info: MemberInfo, loop: Int, since: UInt64?)] = []
    var parkedChats: [(info: MemberInfo, chats: [InboundChat])] = []
    /// Published chats of local senders, by publish token, waiting to be acknowledged.
    var awaitingAck: [UInt64: (member: MemberID, id: String)] = [:]
    /// Changed (to a number unique in the process) whenever the room starts over: subscribe, unsubscribe,
    /// resync. Replies to requests of an older generation are ignored.
    var generation: UInt64 = 0

    init(limits: RoomLog.Limits) {
        self.recent = FrameLog(maxFrames: limits.maxMessages, maxBytes: limits.maxBytes)
    }

    /// Forgets everything but the last seq (kept for the admin listing).
    func reset() {
        phase = .idle
        recent.removeAll()
        ahead = [:]
        catchingUp = false
        catchUpAgain = false
        parkedJoins = []
        parkedChats = []
        awaitingAck = [:]
        generation = Self.nextNumber()
    }
}

@available(*, unavailable)
extension PubSubRoomState: Sendable {}

/// The most recent chat frames of a room with their seqs, bounded by count and bytes.
struct FrameLog {
    let maxFrames: Int
    let maxBytes: Int
    private var frames = CircularBuffer<(seq: UInt64, frame: ByteBuffer)>()
    private var bytes = 0

    init(maxFrames: Int, maxBytes: Int) {
        self.maxFrames = maxFrames
        self.maxBytes = maxBytes
    }

    var firstSeq: UInt64? { frames.first?.seq }
    var lastSeq: UInt64? { frames.last?.seq }

    /// Appends the frame of `seq`, which must follow the last one; a gap starts the log over.
    mutating func append(seq: UInt64, frame: ByteBuffer) {
        if let last = frames.last?.seq, seq != last + 1 { removeAll() }
        frames.append((seq, frame))
        bytes += frame.readableBytes
        while frames.count > maxFrames || (bytes > maxBytes && frames.count > 1) {
            bytes -= frames.removeFirst().frame.readableBytes
        }
    }

    /// The frames after `seq` up to `through`, when this log holds all of them; nil otherwise.
    func frames(after seq: UInt64, through last: UInt64) -> [(seq: UInt64, frame: ByteBuffer)]? {
        if seq >= last { return [] }
        guard let first = firstSeq, let newest = lastSeq, first <= seq + 1, newest >= last else { return nil }
        let start = Int(seq + 1 - first)
        let end = Int(last - first)
        return (start...end).map { frames[frames.index(frames.startIndex, offsetBy: $0)] }
    }

    mutating func removeAll() {
        frames.removeAll()
        bytes = 0
    }
}

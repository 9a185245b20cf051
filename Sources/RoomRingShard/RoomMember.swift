import NIOCore
import RoomRingCore

/// A connection that receives a room's frames; implemented by the WebSocket handler (and by SSE later).
protocol RoomMember: AnyObject {
    /// Queues a text frame payload (already-encoded JSON) without flushing; `wire` is the same payload already
    /// framed as a WebSocket text frame, shared by every member of a broadcast (nil for a message to one member).
    func deliver(_ payload: ByteBuffer, wire: ByteBuffer?)
    /// Flushes what `deliver` queued; called once per batch.
    func flushDeliveries()
    /// Ends the membership with a WebSocket close code (shutdown, handoff).
    func close(code: UInt16, reason: String, force: Bool)
    /// How `GET /rooms/<id>/members` lists this member; nil for readers that are not participants (event streams).
    var presence: MemberPresence? { get }
}

/// A participant as `GET /rooms/<id>/members` shows it.
struct MemberPresence: Codable, Sendable, Hashable {
    var name: String
    var client: String?
}

/// Who a member is, as the room needs to know it.
struct MemberInfo: Sendable {
    var id: MemberID
    var room: RoomID
    var name: String
    /// The client id from `?client=`, used for dedup; defaults to a per-connection id.
    var client: String
}

/// A chat line on its way from a member's loop to the room's home loop.
struct InboundChat: Sendable {
    var message: String
    var id: String?
    var ts: Int64
}

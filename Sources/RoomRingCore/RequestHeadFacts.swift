/// What the proxy routes and forwards a request by, read from a complete, valid head without turning each header
/// into strings (``RequestHeadParser/scan(_:)``). The head's bytes themselves are forwarded as they came.
public struct RequestHeadFacts: Hashable, Sendable {
    /// Bytes the head occupied, including the final empty line.
    public var length: Int
    /// The room named by `/rooms/<id>[/...]`, nil for other paths.
    public var room: RoomID?
    /// `Connection` lists `upgrade` and `Upgrade` lists `websocket`.
    public var isWebSocketUpgrade: Bool
    /// The first `X-Request-ID` value as sent (not yet judged safe).
    public var requestID: String?
    /// A body follows: a `Content-Length` other than `0`, or (without one) a `Transfer-Encoding`.
    public var hasBody: Bool

    public init(length: Int, room: RoomID?, isWebSocketUpgrade: Bool, requestID: String?, hasBody: Bool) {
        self.length = length
        self.room = room
        self.isWebSocketUpgrade = isWebSocketUpgrade
        self.requestID = requestID
        self.hasBody = hasBody
    }

    /// The same facts read from a head parsed in full: what ``RequestHeadParser/scan(_:)`` must agree with.
    public init(_ head: RequestHead) {
        self.init(length: head.length, room: head.room, isWebSocketUpgrade: head.isWebSocketUpgrade,
                  requestID: head.header("x-request-id"),
                  hasBody: head.header("content-length").map { $0 != "0" } ?? (head.header("transfer-encoding") != nil))
    }
}

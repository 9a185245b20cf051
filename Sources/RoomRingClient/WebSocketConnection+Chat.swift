import RoomRingCore

extension WebSocketConnection {
    /// Sends a chat, with an id when given (the id asks for an `ack` and makes a resend harmless).
    public func sendChat(_ message: String, id: String? = nil) {
        send(text: ClientMessage.chat(message: message, id: id).encoded())
    }

    /// Waits `window`; returns the first event other than a ping or pong, or nil when the connection stayed quiet.
    public func quiet(for window: Duration) async throws -> Event? {
        let deadline = ContinuousClock.now + window
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .milliseconds(20) else { return nil }
            do {
                switch try await next(timeout: remaining) {
                case .ping, .pong: continue
                case let other: return other
                }
            } catch is EventInbox<Event>.Timeout {
                return nil
            }
        }
    }
}

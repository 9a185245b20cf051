/// Decides what each incoming WebSocket frame means, per RFC 6455 §5, so the handler only does I/O.
///
/// It tracks fragmentation and message size and returns an action; the handler keeps the bytes. Single-frame
/// messages (the common case) are reported as `.single` so their payload can be used without copying.
public struct WebSocketMessageStateMachine: Sendable {
    /// Data message kinds.
    public enum MessageKind: Hashable, Sendable {
        case text
        case binary
    }

    /// What to do with a frame.
    public enum Action: Hashable, Sendable {
        /// The frame's payload is one whole message.
        case single(MessageKind)
        /// Start buffering a fragmented message with this payload.
        case start(MessageKind)
        /// Append the payload to the buffered message.
        case append
        /// Append the payload; the buffered bytes are now one whole message.
        case finish(MessageKind)
        /// Answer with a pong carrying the same payload.
        case ping
        /// Ignore (unsolicited or keepalive pong).
        case pong
        /// The peer starts the closing handshake; validate the payload with ``parseClose(_:)``.
        case close
        /// Fail the connection with this close code.
        case fail(code: UInt16, reason: String)
    }

    /// Close codes RoomRing sends (DESIGN.md §4).
    public enum CloseCode {
        public static let normal: UInt16 = 1000
        public static let goingAway: UInt16 = 1001
        public static let protocolError: UInt16 = 1002
        public static let unsupportedData: UInt16 = 1003
        public static let invalidPayload: UInt16 = 1007
        public static let policy: UInt16 = 1008
        public static let tooBig: UInt16 = 1009
        public static let internalError: UInt16 = 1011
        public static let restart: UInt16 = 1012
        public static let tryAgainLater: UInt16 = 1013
    }

    /// Largest data message accepted, in bytes (all fragments together).
    public let maxMessageBytes: Int
    private var fragmented: MessageKind?
    private var bufferedBytes = 0

    /// - Parameters:
    ///   - maxMessageBytes: largest message accepted (default 64 KiB); larger ones fail with 1009.
    public init(maxMessageBytes: Int = 64 * 1024) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// Classifies one frame.
    /// - Parameters:
    ///   - fin: the FIN bit.
    ///   - rsv: the three RSV bits as `0b0rrr` (non-zero without a negotiated extension is an error).
    ///   - opcode: the 4-bit opcode.
    ///   - masked: whether the client masked the frame (clients must).
    ///   - length: payload length.
    public mutating func frame(fin: Bool, rsv: UInt8, opcode: UInt8, masked: Bool, length: Int) -> Action {
        guard rsv == 0 else { return .fail(code: CloseCode.protocolError, reason: "reserved bits set") }
        guard masked else { return .fail(code: CloseCode.protocolError, reason: "client frames must be masked") }
        switch opcode {
        case 0x8, 0x9, 0xA:
            guard fin, length <= 125 else {
                return .fail(code: CloseCode.protocolError, reason: "control frames must be unfragmented, <= 125 bytes")
            }
            return opcode == 0x8 ? .close : opcode == 0x9 ? .ping : .pong
        case 0x1, 0x2:
            guard fragmented == nil else {
                return .fail(code: CloseCode.protocolError, reason: "new message before the previous one finished")
            }
            let kind: MessageKind = opcode == 0x1 ? .text : .binary
            guard length <= maxMessageBytes else { return .fail(code: CloseCode.tooBig, reason: "message too big") }
            if fin { return .single(kind) }
            fragmented = kind
            bufferedBytes = length
            return .start(kind)
        case 0x0:
            guard let kind = fragmented else {
                return .fail(code: CloseCode.protocolError, reason: "continuation frame without a message")
            }
            bufferedBytes += length
            guard bufferedBytes <= maxMessageBytes else {
                return .fail(code: CloseCode.tooBig, reason: "message too big")
            }
            if fin {
                fragmented = nil
                bufferedBytes = 0
                return .finish(kind)
            }
            return .append
        default:
            return .fail(code: CloseCode.protocolError, reason: "reserved opcode \(opcode)")
        }
    }

    /// A parsed close frame payload.
    public enum ClosePayload: Hashable, Sendable {
        /// A valid close; `code` nil when the payload was empty. Echo `code` (or send 1000 when nil).
        case valid(code: UInt16?, reason: String)
        /// The close frame itself was invalid; fail with this code.
        case invalid(code: UInt16)
    }

    /// Validates a close frame payload (RFC 6455 §5.5.1, §7.4).
    public static func parseClose(_ payload: some Collection<UInt8>) -> ClosePayload {
        let bytes = Array(payload)
        if bytes.isEmpty { return .valid(code: nil, reason: "") }
        guard bytes.count >= 2 else { return .invalid(code: CloseCode.protocolError) }
        let code = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        guard isValidReceivedCloseCode(code) else { return .invalid(code: CloseCode.protocolError) }
        guard let reason = String(validating: bytes[2...], as: UTF8.self) else {
            return .invalid(code: CloseCode.invalidPayload)
        }
        return .valid(code: code, reason: reason)
    }

    /// Whether a peer may send `code` in a close frame: 1000–1003, 1007–1011 (and 1012–1014 used in practice),
    /// or 3000–4999. 1004–1006 and 1015 are reserved and never sent on the wire.
    public static func isValidReceivedCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }
}

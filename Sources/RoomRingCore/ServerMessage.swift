#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A message the server sends (DESIGN.md §4).
///
/// Encoding is hand-written: a broadcast encodes each message once for all members, and the byte layout is part of
/// the contract, so it should not depend on an encoder's key order.
public enum ServerMessage: Hashable, Sendable {
    /// First message on every connection.
    case hello(Hello)
    /// A chat line with its room sequence number.
    case chat(Chat)
    /// Acknowledges the sender's message `id`, with the seq it was given.
    case ack(Ack)
    /// A refused message or a warning before a close.
    case error(ErrorPayload)

    /// `hello` payload.
    public struct Hello: Codable, Hashable, Sendable {
        public var shard: String
        public var room: String
        public var seq: UInt64
        public var epoch: UInt64
        /// False when the client asked for `since` but history no longer reaches back (or the room restarted).
        public var resumed: Bool

        public init(shard: String, room: String, seq: UInt64, epoch: UInt64, resumed: Bool) {
            self.shard = shard
            self.room = room
            self.seq = seq
            self.epoch = epoch
            self.resumed = resumed
        }
    }

    /// `chat` payload.
    public struct Chat: Codable, Hashable, Sendable {
        public var message: String
        public var from: String
        public var seq: UInt64
        /// Milliseconds since 1970 when the shard accepted it.
        public var ts: Int64

        public init(message: String, from: String, seq: UInt64, ts: Int64) {
            self.message = message
            self.from = from
            self.seq = seq
            self.ts = ts
        }
    }

    /// `ack` payload.
    public struct Ack: Codable, Hashable, Sendable {
        public var id: String
        public var seq: UInt64

        public init(id: String, seq: UInt64) {
            self.id = id
            self.seq = seq
        }
    }

    /// `error` payload.
    public struct ErrorPayload: Codable, Hashable, Sendable {
        public var code: String
        public var message: String

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    /// The JSON text of this message.
    public func encoded() -> String {
        switch self {
        case .hello(let h):
            #"{"type":"hello","payload":{"shard":"# + JSONText.quoted(h.shard) + #","room":"#
                + JSONText.quoted(h.room) + #","seq":\#(h.seq),"epoch":\#(h.epoch),"resumed":\#(h.resumed)}}"#
        case .chat(let c):
            #"{"type":"chat","payload":{"message":"# + JSONText.quoted(c.message) + #","from":"#
                + JSONText.quoted(c.from) + #","seq":\#(c.seq),"ts":\#(c.ts)}}"#
        case .ack(let a):
            #"{"type":"ack","payload":{"id":"# + JSONText.quoted(a.id) + #","seq":\#(a.seq)}}"#
        case .error(let e):
            #"{"type":"error","payload":{"code":"# + JSONText.quoted(e.code) + #","message":"#
                + JSONText.quoted(e.message) + "}}"
        }
    }

    /// Decodes a server message (clients and tests use this).
    /// - Throws: ``ProtocolError``.
    public static func decode(_ bytes: some Collection<UInt8>) throws(ProtocolError) -> ServerMessage {
        do {
            let decoder = JSONDecoder()
            let data = Data(bytes)
            let type = try decoder.decode(TypeOnly.self, from: data).type
            switch type {
            case "hello": return .hello(try decoder.decode(Wrapper<Hello>.self, from: data).payload)
            case "chat": return .chat(try decoder.decode(Wrapper<Chat>.self, from: data).payload)
            case "ack": return .ack(try decoder.decode(Wrapper<Ack>.self, from: data).payload)
            case "error": return .error(try decoder.decode(Wrapper<ErrorPayload>.self, from: data).payload)
            default: throw ProtocolError(.unknownType(type))
            }
        } catch let error as ProtocolError {
            throw error
        } catch {
            throw ProtocolError(.malformedJSON)
        }
    }

    private struct TypeOnly: Decodable { var type: String }
    private struct Wrapper<P: Decodable>: Decodable { var payload: P }
}

/// Minimal JSON string quoting (RFC 8259 §7).
public enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    public static func quoted(_ text: String) -> String {
        var needsEscape = false
        for byte in text.utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            needsEscape = true
            break
        }
        if !needsEscape { return "\"" + text + "\"" }
        var out = "\""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A message a client sends (DESIGN.md §4), compatible with the classic tutorial schema:
///
/// ```json
/// {"type":"chat","payload":{"message":"hi there"},"id":"c-17"}
/// {"type":"join","payload":{"roomId":"123"}}
/// ```
public enum ClientMessage: Hashable, Sendable {
    /// A chat line; `id` (optional) enables an `ack` and deduplication by `(client, id)`.
    case chat(message: String, id: String?)
    /// The seed protocol's join; a no-op when it names the connection's room.
    case join(roomID: String)

    /// Longest client message id accepted; ids are kept in the dedup table, so they are bounded.
    public static let maxIDLength = 128

    /// Decodes one text frame.
    /// - Throws: ``ProtocolError`` for anything that is not exactly one known message.
    public static func decode(_ bytes: some Collection<UInt8>) throws(ProtocolError) -> ClientMessage {
        let envelope: Envelope
        do {
            envelope = try JSONDecoder().decode(Envelope.self, from: Data(bytes))
        } catch {
            throw ProtocolError(.malformedJSON)
        }
        switch envelope.type {
        case "chat":
            guard let message = envelope.payload?.message else { throw ProtocolError(.missingField("payload.message")) }
            if let id = envelope.id, id.isEmpty || id.utf8.count > maxIDLength { throw ProtocolError(.invalidField("id")) }
            return .chat(message: message, id: envelope.id)
        case "join":
            guard let room = envelope.payload?.roomId else { throw ProtocolError(.missingField("payload.roomId")) }
            return .join(roomID: room)
        default:
            throw ProtocolError(.unknownType(envelope.type))
        }
    }

    /// The JSON text of this message, as a client sends it.
    public func encoded() -> String {
        switch self {
        case .chat(let message, let id):
            var out = #"{"type":"chat","payload":{"message":"# + JSONText.quoted(message) + "}"
            if let id { out += #","id":"# + JSONText.quoted(id) }
            return out + "}"
        case .join(let room):
            return #"{"type":"join","payload":{"roomId":"# + JSONText.quoted(room) + "}}"
        }
    }

    private struct Envelope: Decodable {
        struct Payload: Decodable {
            var message: String?
            var roomId: String?

            init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                message = try c.decodeIfPresent(String.self, forKey: .message)
                // Seed clients send the room id as a number or a string.
                if let text = try? c.decodeIfPresent(String.self, forKey: .roomId) {
                    roomId = text
                } else if let number = try? c.decodeIfPresent(Int64.self, forKey: .roomId) {
                    roomId = String(number)
                }
            }

            enum CodingKeys: String, CodingKey { case message, roomId }
        }

        var type: String
        var payload: Payload?
        var id: String?

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            payload = try c.decodeIfPresent(Payload.self, forKey: .payload)
            if let text = try? c.decodeIfPresent(String.self, forKey: .id) {
                id = text
            } else if let number = try? c.decodeIfPresent(Int64.self, forKey: .id) {
                id = String(number)
            } else if c.contains(.id), try !c.decodeNil(forKey: .id) {
                throw DecodingError.dataCorruptedError(forKey: .id, in: c, debugDescription: "id must be a string")
            }
        }

        enum CodingKeys: String, CodingKey { case type, payload, id }
    }
}

/// Why a client message was refused; `code` is what the `error` reply carries.
public struct ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    enum Reason: Hashable, Sendable {
        case malformedJSON
        case unknownType(String)
        case missingField(String)
        case invalidField(String)
    }

    let reason: Reason
    init(_ reason: Reason) { self.reason = reason }

    /// Stable code for the `error` message: `bad_json`, `unknown_type`, `missing_field`, `invalid_field`.
    public var code: String {
        switch reason {
        case .malformedJSON: "bad_json"
        case .unknownType: "unknown_type"
        case .missingField: "missing_field"
        case .invalidField: "invalid_field"
        }
    }

    public var description: String {
        switch reason {
        case .malformedJSON: "frame is not a JSON object with a string \"type\""
        case .unknownType(let t): "unknown message type \"\(t.prefix(64))\"; expected \"chat\" or \"join\""
        case .missingField(let f): "missing field \(f)"
        case .invalidField(let f): "invalid field \(f)"
        }
    }
}

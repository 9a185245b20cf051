#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The body of `POST /rooms/<id>/messages`, a publish from a backend service (DESIGN.md §4):
///
/// ```json
/// {"message": "deploy finished", "from": "ci", "id": "build-812", "client": "ci-runner"}
/// ```
///
/// Only `message` is required. `id` makes a retried publish safe: a second publish with the same `(client, id)` is
/// answered with the first one's seq and not broadcast again.
public struct PublishRequest: Hashable, Sendable {
    /// The text, as a chat's `message`.
    public var message: String
    /// Dedup id, like a chat's `id` (1–128 characters).
    public var id: String?
    /// Display name for the chat's `from`; empty or absent means ``defaultFrom``.
    public var from: String?
    /// Dedup namespace; the `RoomRing-Client` header is used when absent.
    public var client: String?

    /// `from` of a publish that names no sender.
    public static let defaultFrom = "server"
    /// Longest `from` kept (longer ones are cut, as WebSocket `name`s are).
    public static let maxFromLength = 64

    public init(message: String, id: String? = nil, from: String? = nil, client: String? = nil) {
        self.message = message
        self.id = id
        self.from = from
        self.client = client
    }

    /// The sender name a chat carries.
    public var resolvedFrom: String {
        guard let from, !from.isEmpty else { return Self.defaultFrom }
        return String(from.prefix(Self.maxFromLength))
    }

    /// Decodes a request body.
    /// - Throws: ``ProtocolError``: `bad_json` (not a JSON object), `missing_field` (no string `message`),
    ///   `invalid_field` (an `id` or `client` that is empty, too long or not a string).
    public static func decode(_ bytes: some Collection<UInt8>) throws(ProtocolError) -> PublishRequest {
        let body: Body
        do {
            body = try JSONDecoder().decode(Body.self, from: Data(bytes))
        } catch let error as ProtocolError {
            throw error
        } catch {
            throw ProtocolError(.malformedJSON)
        }
        guard let message = body.message else { throw ProtocolError(.missingField("message")) }
        if let id = body.id, id.isEmpty || id.utf8.count > ClientMessage.maxIDLength {
            throw ProtocolError(.invalidField("id"))
        }
        if let client = body.client, client.isEmpty || client.utf8.count > ClientMessage.maxIDLength {
            throw ProtocolError(.invalidField("client"))
        }
        return PublishRequest(message: message, id: body.id, from: body.from, client: body.client)
    }

    /// The JSON text of this request, as a publisher sends it.
    public func encoded() -> String {
        var out = #"{"message":"# + JSONText.quoted(message)
        if let id { out += #","id":"# + JSONText.quoted(id) }
        if let from { out += #","from":"# + JSONText.quoted(from) }
        if let client { out += #","client":"# + JSONText.quoted(client) }
        return out + "}"
    }

    private struct Body: Decodable {
        var message: String?
        var id: String?
        var from: String?
        var client: String?

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            message = try Self.string(c, .message)
            // Ids may be numbers, as in the chat protocol.
            if let number = try? c.decodeIfPresent(Int64.self, forKey: .id) {
                id = String(number)
            } else {
                id = try Self.string(c, .id)
            }
            from = try Self.string(c, .from)
            client = try Self.string(c, .client)
        }

        /// The string at `key`; nil when absent or null, and an `invalid_field` error when it is not a string.
        private static func string(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> String? {
            guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
            guard let text = try? c.decode(String.self, forKey: key) else {
                throw ProtocolError(.invalidField(key.rawValue))
            }
            return text
        }

        enum CodingKeys: String, CodingKey { case message, id, from, client }
    }
}

/// The answer to a publish: the seq the message has in its room.
public struct PublishReply: Codable, Hashable, Sendable {
    public var room: String
    public var seq: UInt64
    /// True when this was a resend of an `(client, id)` already accepted: `seq` is the original one.
    public var duplicate: Bool

    public init(room: String, seq: UInt64, duplicate: Bool) {
        self.room = room
        self.seq = seq
        self.duplicate = duplicate
    }
}

/// The answer to `GET /rooms/<id>/messages?since=<seq>`: the kept messages after `since`.
public struct MessagesPage: Codable, Hashable, Sendable {
    public var room: String
    /// The room's newest seq (0 when it has no messages, or is not known to this shard).
    public var seq: UInt64
    /// False when history no longer reaches back to `since + 1` (or the room lost its state): messages are missing.
    public var resumed: Bool
    public var messages: [ServerMessage.Chat]

    public init(room: String, seq: UInt64, resumed: Bool, messages: [ServerMessage.Chat]) {
        self.room = room
        self.seq = seq
        self.resumed = resumed
        self.messages = messages
    }
}

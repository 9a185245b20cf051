import Foundation
import Testing
@testable import RoomRingCore

/// Strings that stress JSON quoting.
enum TrickyStrings {
    static let all: [String] = [
        "", "plain", "hi there", "\"", "\\", "\\\"", "\"\\\"", "a\"b\\c", "\n", "\r\n", "\t", "line1\nline2\r\nline3",
        "\u{00}", "\u{01}", "\u{08}\u{0C}", "\u{1F}", "\u{7F}", "\u{80}", "\u{9F}", "\u{2028}\u{2029}", "\u{FEFF}bom",
        "\u{FFFD}", "\u{FFFF}", "caf\u{E9}", "cafe\u{301}", "\u{1F389}", "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
        "\u{1D11E}", "\u{10FFFF}", "</script><!--", "{\"type\":\"chat\"}", "'single'", "/slash/", "\\u0041",
        "\\n is not a newline", String((0..<32).map { Character(Unicode.Scalar(UInt8($0))) }),
        String(repeating: "\u{1F600}\"\\\n", count: 200), "\u{0}\u{1}mixed\u{1F389}\"end",
    ]

    /// Parses a JSON string literal with JSONSerialization.
    static func parseWithSerialization(_ literal: String) -> String? {
        guard let data = "[\(literal)]".data(using: .utf8),
            let array = try? JSONSerialization.jsonObject(with: data) as? [Any]
        else { return nil }
        return array.first as? String
    }

    /// Parses a JSON string literal with JSONDecoder.
    static func parseWithDecoder(_ literal: String) -> String? {
        try? JSONDecoder().decode([String].self, from: Data("[\(literal)]".utf8)).first
    }
}

/// Exact equality of Unicode scalars (`String ==` is canonical equivalence: "\u{E9}" == "e\u{301}").
func protocolSameScalars(_ a: String?, _ b: String) -> Bool {
    guard let a else { return false }
    return Array(a.unicodeScalars) == Array(b.unicodeScalars)
}

/// Like ``protocolSameScalars(_:_:)`` for values read back with JSONSerialization, which on Linux
/// (swift-corelibs-foundation) drops U+FEFF from strings; JSONDecoder keeps it and is checked exactly elsewhere.
func protocolSameScalarsSerialized(_ a: String?, _ b: String) -> Bool {
    guard let a else { return false }
    return Array(a.unicodeScalars.filter { $0 != "\u{FEFF}" }) == Array(b.unicodeScalars.filter { $0 != "\u{FEFF}" })
}

@Suite("JSONText (protocol)")
struct ProtocolJSONTextTests {
    @Test(arguments: TrickyStrings.all)
    func quotedParsesBack(_ text: String) {
        let literal = JSONText.quoted(text)
        #expect(literal.hasPrefix("\"") && literal.hasSuffix("\"") && literal.utf8.count >= 2)
        #expect(protocolSameScalarsSerialized(TrickyStrings.parseWithSerialization(literal), text), "\(literal)")
        #expect(protocolSameScalars(TrickyStrings.parseWithDecoder(literal), text), "\(literal)")
        // RFC 8259: no raw control characters inside a string.
        #expect(!literal.utf8.contains { $0 < 0x20 })
    }

    @Test func exactEscapes() {
        #expect(JSONText.quoted("plain") == #""plain""#)
        #expect(JSONText.quoted("") == #""""#)
        #expect(JSONText.quoted("a\"b") == #""a\"b""#)
        #expect(JSONText.quoted("a\\b") == #""a\\b""#)
        #expect(JSONText.quoted("\n\r\t") == #""\n\r\t""#)
        #expect(JSONText.quoted("\u{01}") == #""\u0001""#)
        #expect(JSONText.quoted("\u{1F}x") == #""\u001fx""#)
        #expect(JSONText.quoted("\u{0}") == #""\u0000""#)
        #expect(JSONText.quoted("\u{1F389}") == "\"\u{1F389}\"")
        #expect(JSONText.quoted("caf\u{E9}\u{7F}") == "\"caf\u{E9}\u{7F}\"")
    }
}

@Suite("ClientMessage")
struct ClientMessageTests {
    static func decode(_ text: String) throws(ProtocolError) -> ClientMessage {
        try ClientMessage.decode(Array(text.utf8))
    }

    static func error(_ text: String) -> ProtocolError? {
        do {
            let message = try decode(text)
            Issue.record("decoded \(message) from \(text)")
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        (#"{"type":"chat","payload":{"message":"hi there"},"id":"c-17"}"#, ClientMessage.chat(message: "hi there", id: "c-17")),
        (#"{"type":"chat","payload":{"message":"hi there"}}"#, .chat(message: "hi there", id: nil)),
        (#"{"type":"chat","payload":{"message":"hi"},"id":17}"#, .chat(message: "hi", id: "17")),
        (#"{"type":"chat","payload":{"message":"hi"},"id":null}"#, .chat(message: "hi", id: nil)),
        (#"{"type":"chat","payload":{"message":""}}"#, .chat(message: "", id: nil)),
        (#" { "id" : "x" , "payload" : { "message" : "a\nb\u00e9\ud83c\udf89" } , "type" : "chat" , "extra": [1] } "#, .chat(message: "a\nb\u{E9}\u{1F389}", id: "x")),
        (#"{"type":"chat","payload":{"message":"m","from":"ignored","roomId":"r"},"id":"i"}"#, .chat(message: "m", id: "i")),
        (#"{"type":"join","payload":{"roomId":"123"}}"#, .join(roomID: "123")),
        (#"{"type":"join","payload":{"roomId":123}}"#, .join(roomID: "123")),
        (#"{"type":"join","payload":{"roomId":"lobby"},"id":"j1"}"#, .join(roomID: "lobby")),
    ])
    func decodesDesignExamples(text: String, expected: ClientMessage) throws {
        #expect(try Self.decode(text) == expected)
    }

    @Test(arguments: [
        "", "not json", "{", #"{"type":"chat""#, "[]", #"[{"type":"chat","payload":{"message":"hi"}}]"#, "null", "42",
        #""chat""#, "{}", #"{"payload":{"message":"hi"}}"#, #"{"type":1,"payload":{"message":"hi"}}"#,
        #"{"type":null}"#, #"{"type":["chat"]}"#, #"{"type":{"v":"chat"}}"#, #"{"type":true}"#,
        #"{"type":"chat","payload":{"message":"hi"},"id":true}"#, #"{"type":"chat","payload":{"message":"hi"},"id":{}}"#,
        #"{"type":"chat","payload":"hi"}"#,
    ])
    func malformedIsBadJSON(text: String) throws {
        let error = try #require(Self.error(text))
        #expect(error.code == "bad_json")
        #expect(error.reason == .malformedJSON)
    }

    @Test func invalidUTF8IsBadJSON() throws {
        var bytes = Array(#"{"type":"chat","payload":{"message":"x"}}"#.utf8)
        bytes[bytes.lastIndex(of: UInt8(ascii: "x"))!] = 0xFF
        do {
            _ = try ClientMessage.decode(bytes)
            Issue.record("decoded invalid UTF-8")
        } catch {
            #expect(error.code == "bad_json")
        }
    }

    @Test(arguments: [
        (#"{"type":"typing"}"#, "typing"), (#"{"type":"CHAT","payload":{"message":"x"}}"#, "CHAT"),
        (#"{"type":"","payload":{"message":"x"}}"#, ""), (#"{"type":"hello","payload":{}}"#, "hello"),
        (#"{"type":"ack","payload":{"id":"a","seq":1}}"#, "ack"),
    ])
    func unknownType(text: String, type: String) throws {
        let error = try #require(Self.error(text))
        #expect(error.code == "unknown_type")
        #expect(error.reason == .unknownType(type))
    }

    @Test(arguments: [
        (#"{"type":"chat"}"#, "payload.message"), (#"{"type":"chat","payload":{}}"#, "payload.message"),
        (#"{"type":"chat","payload":{"text":"hi"}}"#, "payload.message"), (#"{"type":"chat","payload":null}"#, "payload.message"),
        (#"{"type":"chat","payload":{"message":null},"id":"x"}"#, "payload.message"),
        (#"{"type":"join"}"#, "payload.roomId"), (#"{"type":"join","payload":{"room":"a"}}"#, "payload.roomId"),
    ])
    func missingField(text: String, field: String) throws {
        let error = try #require(Self.error(text))
        #expect(error.code == "missing_field")
        #expect(error.reason == .missingField(field))
    }

    @Test func idBounds() throws {
        func chat(id: String) -> String { #"{"type":"chat","payload":{"message":"m"},"id":"# + JSONText.quoted(id) + "}" }
        for bad in ["", String(repeating: "i", count: 129), String(repeating: "\u{20AC}", count: 43), String(repeating: "x", count: 10_000)] {
            let error = try #require(Self.error(chat(id: bad)), "id of \(bad.utf8.count) bytes")
            #expect(error.code == "invalid_field")
            #expect(error.reason == .invalidField("id"))
        }
        for good in ["a", String(repeating: "i", count: 128), String(repeating: "\u{20AC}", count: 42) + "ab"] {
            #expect(try Self.decode(chat(id: good)) == .chat(message: "m", id: good))
        }
        #expect(ClientMessage.maxIDLength == 128)
    }

    @Test func errorCodesAndDescriptions() {
        let errors: [(ProtocolError, String)] = [
            (.init(.malformedJSON), "bad_json"), (.init(.unknownType("x")), "unknown_type"),
            (.init(.missingField("f")), "missing_field"), (.init(.invalidField("id")), "invalid_field"),
        ]
        for (error, code) in errors {
            #expect(error.code == code)
            #expect(!error.description.isEmpty)
        }
        #expect(ProtocolError(.unknownType(String(repeating: "t", count: 10_000))).description.utf8.count < 200)
    }

    @Test func encodedMatchesTheDesignExamples() {
        #expect(ClientMessage.chat(message: "hi there", id: "c-17").encoded() == #"{"type":"chat","payload":{"message":"hi there"},"id":"c-17"}"#)
        #expect(ClientMessage.chat(message: "hi there", id: nil).encoded() == #"{"type":"chat","payload":{"message":"hi there"}}"#)
        #expect(ClientMessage.join(roomID: "123").encoded() == #"{"type":"join","payload":{"roomId":"123"}}"#)
    }

    static let roundTrip: [ClientMessage] = TrickyStrings.all.flatMap { text in
        [ClientMessage.chat(message: text, id: nil), .join(roomID: text)]
            + (text.isEmpty || text.utf8.count > 128 ? [] : [.chat(message: text, id: text), .chat(message: "m", id: text)])
    }

    @Test(arguments: roundTrip)
    func encodeDecodeRoundTrip(_ message: ClientMessage) throws {
        let text = message.encoded()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let payload = try #require(object["payload"] as? [String: Any])
        switch message {
        case .chat(let body, let id):
            #expect(Set(object.keys) == (id == nil ? ["type", "payload"] : ["type", "payload", "id"]))
            #expect(Set(payload.keys) == ["message"])
            #expect(protocolSameScalarsSerialized(payload["message"] as? String, body))
        case .join(let room):
            #expect(Set(object.keys) == ["type", "payload"])
            #expect(Set(payload.keys) == ["roomId"])
            #expect(protocolSameScalarsSerialized(payload["roomId"] as? String, room))
        }
        let decoded = try ClientMessage.decode(Array(text.utf8))
        #expect(decoded == message)
        // Hashable equality of String is canonical equivalence; compare the exact scalars too.
        switch (decoded, message) {
        case (.chat(let a, let ia), .chat(let b, let ib)):
            #expect(protocolSameScalars(a, b))
            #expect(ia.map { protocolSameScalars($0, ib ?? "") } ?? (ib == nil))
        case (.join(let a), .join(let b)):
            #expect(protocolSameScalars(a, b))
        default:
            Issue.record("kind changed: \(decoded) vs \(message)")
        }
    }
}

@Suite("ServerMessage")
struct ServerMessageTests {
    @Test func encodedMatchesTheDesignExamples() {
        #expect(ServerMessage.hello(.init(shard: "s2", room: "lobby", seq: 41, epoch: 3, resumed: true)).encoded()
            == #"{"type":"hello","payload":{"shard":"s2","room":"lobby","seq":41,"epoch":3,"resumed":true}}"#)
        #expect(ServerMessage.chat(.init(message: "hi there", from: "alice", seq: 42, ts: 1732230000123)).encoded()
            == #"{"type":"chat","payload":{"message":"hi there","from":"alice","seq":42,"ts":1732230000123}}"#)
        #expect(ServerMessage.ack(.init(id: "c-17", seq: 42)).encoded() == #"{"type":"ack","payload":{"id":"c-17","seq":42}}"#)
        #expect(ServerMessage.error(.init(code: "rate_limited", message: "...")).encoded()
            == #"{"type":"error","payload":{"code":"rate_limited","message":"..."}}"#)
        #expect(ServerMessage.hello(.init(shard: "s1", room: "r", seq: 0, epoch: 0, resumed: false)).encoded()
            == #"{"type":"hello","payload":{"shard":"s1","room":"r","seq":0,"epoch":0,"resumed":false}}"#)
    }

    static let messages: [ServerMessage] = TrickyStrings.all.flatMap { text -> [ServerMessage] in
        [
            .hello(.init(shard: text, room: text, seq: 41, epoch: 3, resumed: true)),
            .chat(.init(message: text, from: text, seq: 42, ts: 1_732_230_000_123)),
            .ack(.init(id: text, seq: 7)),
            .error(.init(code: text, message: text)),
        ]
    } + [
        .hello(.init(shard: "s", room: "r", seq: 0, epoch: 0, resumed: false)),
        .hello(.init(shard: "s", room: "r", seq: UInt64(Int64.max), epoch: UInt64(UInt32.max) + 1, resumed: true)),
        .chat(.init(message: "m", from: "", seq: 1, ts: 0)),
        .chat(.init(message: "m", from: "f", seq: 9_007_199_254_740_993, ts: -1)),
        .chat(.init(message: "m", from: "f", seq: 1, ts: Int64.min)),
        .chat(.init(message: "m", from: "f", seq: 1, ts: Int64.max)),
        .ack(.init(id: "", seq: 0)),
    ]

    static let fieldNames: [String: Set<String>] = [
        "hello": ["shard", "room", "seq", "epoch", "resumed"], "chat": ["message", "from", "seq", "ts"],
        "ack": ["id", "seq"], "error": ["code", "message"],
    ]

    @Test(arguments: messages)
    func encodedIsValidJSONWithTheDesignFields(_ message: ServerMessage) throws {
        let text = message.encoded()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["type", "payload"])
        let type = try #require(object["type"] as? String)
        let payload = try #require(object["payload"] as? [String: Any])
        #expect(Set(payload.keys) == Self.fieldNames[type])
        switch message {
        case .hello(let h):
            #expect(type == "hello")
            #expect(protocolSameScalarsSerialized(payload["shard"] as? String, h.shard))
            #expect(protocolSameScalarsSerialized(payload["room"] as? String, h.room))
            #expect(text.contains(#""seq":\#(h.seq),"epoch":\#(h.epoch),"resumed":\#(h.resumed)}}"#))
        case .chat(let c):
            #expect(type == "chat")
            #expect(protocolSameScalarsSerialized(payload["message"] as? String, c.message))
            #expect(protocolSameScalarsSerialized(payload["from"] as? String, c.from))
            #expect(text.hasSuffix(#","seq":\#(c.seq),"ts":\#(c.ts)}}"#))
        case .ack(let a):
            #expect(type == "ack")
            #expect(protocolSameScalarsSerialized(payload["id"] as? String, a.id))
            #expect(text.hasSuffix(#","seq":\#(a.seq)}}"#))
        case .error(let e):
            #expect(type == "error")
            #expect(protocolSameScalarsSerialized(payload["code"] as? String, e.code))
            #expect(protocolSameScalarsSerialized(payload["message"] as? String, e.message))
        }
    }

    @Test(arguments: messages)
    func decodeOfEncodedRoundTrips(_ message: ServerMessage) throws {
        let decoded = try ServerMessage.decode(Array(message.encoded().utf8))
        #expect(decoded == message)
        #expect(decoded.encoded().utf8.elementsEqual(message.encoded().utf8), "re-encoding changed the bytes")
    }

    @Test func decodeRejects() throws {
        let cases: [(String, String)] = [
            ("not json", "bad_json"), ("[]", "bad_json"), ("{}", "bad_json"), (#"{"type":"hello"}"#, "bad_json"),
            (#"{"type":"ack","payload":{"id":"a"}}"#, "bad_json"), (#"{"type":"ack","payload":{"id":"a","seq":-1}}"#, "bad_json"),
            (#"{"type":"presence","payload":{}}"#, "unknown_type"), (#"{"type":"join","payload":{"roomId":"r"}}"#, "unknown_type"),
        ]
        for (text, code) in cases {
            do {
                let message = try ServerMessage.decode(Array(text.utf8))
                Issue.record("decoded \(message) from \(text)")
            } catch {
                #expect(error.code == code, "\(text)")
            }
        }
    }

    @Test func chatFromRoomLogEntry() {
        let entry = RoomLog.Entry(seq: 42, message: "hi there", from: "alice", ts: 1732230000123)
        #expect(ServerMessage.chat(entry.chat).encoded()
            == #"{"type":"chat","payload":{"message":"hi there","from":"alice","seq":42,"ts":1732230000123}}"#)
    }
}

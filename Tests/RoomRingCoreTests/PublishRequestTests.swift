import Foundation
import Testing
@testable import RoomRingCore

/// The publish body and the Server-Sent Events framing of server messages.
struct PublishRequestTests {
    @Test func decodesWhatPublishersSend() throws {
        #expect(try PublishRequest.decode(Array(#"{"message":"hi"}"#.utf8)) == PublishRequest(message: "hi"))
        let full = try PublishRequest.decode(Array(#"{"message":"m","id":17,"from":"ci","client":"c","extra":true}"#.utf8))
        #expect(full == PublishRequest(message: "m", id: "17", from: "ci", client: "c"))
        #expect(try PublishRequest.decode(Array(#"{"message":"m","id":null,"from":null}"#.utf8)).resolvedFrom == "server")
        #expect(PublishRequest(message: "m", from: String(repeating: "n", count: 100)).resolvedFrom.count == 64)
        for text in TrickyStrings.all {
            let request = PublishRequest(message: text, id: "i", from: text.isEmpty ? nil : text, client: "c")
            #expect(try PublishRequest.decode(Array(request.encoded().utf8)) == request)
        }
    }

    @Test func refusesWhatIsNotAPublish() {
        let cases: [(String, String)] = [
            ("", "bad_json"), ("[]", "bad_json"), ("\"message\"", "bad_json"), ("{", "bad_json"),
            ("{}", "missing_field"), (#"{"message":null}"#, "missing_field"), (#"{"message":1}"#, "invalid_field"),
            (#"{"message":"m","id":""}"#, "invalid_field"), (#"{"message":"m","id":1.5}"#, "invalid_field"),
            (#"{"message":"m","client":""}"#, "invalid_field"), (#"{"message":"m","from":{}}"#, "invalid_field"),
        ]
        for (body, code) in cases {
            #expect(throws: ProtocolError.self, "\(body)") { try PublishRequest.decode(Array(body.utf8)) }
            do {
                _ = try PublishRequest.decode(Array(body.utf8))
            } catch {
                #expect(error.code == code, "\(body)")
            }
        }
    }

    @Test func chatsBecomeEventsWithTheirSeqAsId() throws {
        for text in TrickyStrings.all + [#"","seq":99,"x":""#, "\",\"seq\":5"] {
            let chat = ServerMessage.Chat(message: text, from: "a\"b", seq: 42, ts: 7)
            let event = try #require(ServerSentEvent.encode(frame: Array(ServerMessage.chat(chat).encoded().utf8)))
            let lines = String(decoding: event, as: UTF8.self).components(separatedBy: "\n")
            #expect(lines.count == 5 && lines[0] == "id: 42" && lines[1] == "event: chat" && lines[3] == "" && lines[4] == "")
            #expect(lines[2].hasPrefix("data: "))
            let data = Data(lines[2].dropFirst(6).utf8)
            #expect(try JSONDecoder().decode(ServerMessage.Chat.self, from: data) == chat)
        }
        let hello = ServerMessage.hello(.init(shard: "s1", room: "r", seq: 3, epoch: 2, resumed: true)).encoded()
        let helloEvent = String(decoding: try #require(ServerSentEvent.encode(frame: Array(hello.utf8))), as: UTF8.self)
        #expect(helloEvent == "event: hello\ndata: {\"shard\":\"s1\",\"room\":\"r\",\"seq\":3,\"epoch\":2,\"resumed\":true}\n\n")
        #expect(ServerSentEvent.encode(frame: Array("not json".utf8)) == nil)
        #expect(ServerSentEvent.encode(frame: Array(#"{"type":"chat","payload":{"a":"x"#.utf8)) == nil)
        #expect(ServerSentEvent.comment("a\nb") == Array(": ab\n\n".utf8))
    }

    @Test func seqValuesAreStrictDecimals() {
        #expect(ServerSentEvent.parseSeq("12") == 12 && ServerSentEvent.parseSeq(" 0 ") == 0)
        for bad in ["", " ", "-1", "+1", "1e3", "0x10", "abc", "1 2", "18446744073709551616"] {
            #expect(ServerSentEvent.parseSeq(bad) == nil, "\(bad)")
        }
    }
}

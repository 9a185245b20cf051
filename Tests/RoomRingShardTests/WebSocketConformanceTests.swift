import Foundation
import Testing
import RoomRingClient
import RoomRingCore
import RoomRingShard

/// RFC 6455 conformance of a real shard over loopback (DESIGN.md §4): each hostile frame fails only its own
/// connection with the right close code, and a member of another room keeps chatting.
@Suite struct WebSocketConformanceTests {
    static let invalidUTF8: [UInt8] = [
        0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64,
    ]

    /// Opens a bystander (room `bystanders`) and a victim (room `target`), runs `attack` on the victim, and
    /// expects the victim's next event to be a close with `code`, then the end of the TCP connection. Afterwards
    /// the bystander still chats, and a fresh member of the victim's room too.
    func expectFailure(_ code: UInt16, _ attack: (WebSocketConnection) async throws -> Void,
                       sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await TestShard.with { shard in
            let bystander = try await shard.join("bystanders", name: "bob", client: "bob")
            _ = try await bystander.hello()
            let victim = try await shard.join("target", name: "mallory")
            _ = try await victim.hello()
            try await attack(victim)
            let event = try await victim.next()
            guard case .close(let received, _) = event else {
                Issue.record("expected close \(code), got \(event)", sourceLocation: sourceLocation)
                await victim.close()
                return
            }
            #expect(received == code, sourceLocation: sourceLocation)
            try await expectDisconnect(victim, sourceLocation: sourceLocation)
            try await expectChatWorks(bystander, id: "after", sourceLocation: sourceLocation)
            let fresh = try await shard.join("target", name: "trent")
            _ = try await fresh.hello()
            try await expectChatWorks(fresh, id: "fresh", sourceLocation: sourceLocation)
            await bystander.close()
            await fresh.close()
        }
    }

    /// Skips traffic until the TCP connection ends; fails the test if it does not end within `timeout`.
    func expectDisconnect(_ connection: WebSocketConnection, timeout: Duration = .seconds(10),
                          sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            do {
                if try await connection.next(timeout: deadline - clock.now) == .disconnected { return }
            } catch is EventInbox<WebSocketConnection.Event>.Timeout {
                break
            }
        }
        Issue.record("connection still open after \(timeout)", sourceLocation: sourceLocation)
        await connection.close()
    }

    /// Sends a chat with `id` and expects its ack and its broadcast copy (same seq, same text).
    func expectChatWorks(_ connection: WebSocketConnection, id: String, message: String = "still here",
                         sourceLocation: SourceLocation = #_sourceLocation) async throws {
        connection.send(text: ClientMessage.chat(message: message, id: id).encoded())
        var ack: ServerMessage.Ack?
        var chat: ServerMessage.Chat?
        for _ in 0..<2 {
            switch try await connection.nextMessage() {
            case .ack(let a): ack = a
            case .chat(let c): chat = c
            case let other: Issue.record("unexpected \(other)", sourceLocation: sourceLocation)
            }
        }
        #expect(ack?.id == id, sourceLocation: sourceLocation)
        #expect(chat?.message == message, sourceLocation: sourceLocation)
        #expect(ack != nil && ack?.seq == chat?.seq, sourceLocation: sourceLocation)
    }

    /// A chat message's JSON, as bytes.
    static func chatBytes(_ message: String, id: String? = nil) -> [UInt8] {
        Array(ClientMessage.chat(message: message, id: id).encoded().utf8)
    }

    // MARK: - Failing the connection with 1002

    @Test(arguments: [UInt8(1), 2, 4])
    func reservedBits(rsv: UInt8) async throws {
        try await expectFailure(1002) { $0.write(rsv: rsv, opcode: 0x1, payload: Self.chatBytes("rsv")) }
    }

    @Test(arguments: [UInt8(3), 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    func reservedOpcodes(opcode: UInt8) async throws {
        try await expectFailure(1002) { $0.write(opcode: opcode, payload: Array("junk".utf8)) }
    }

    @Test func unmaskedClientFrame() async throws {
        try await expectFailure(1002) { $0.write(opcode: 0x1, payload: Self.chatBytes("naked"), masked: false) }
    }

    @Test func fragmentedPing() async throws {
        try await expectFailure(1002) { victim in
            victim.write(fin: false, opcode: 0x9, payload: Array("ab".utf8))
            victim.write(fin: true, opcode: 0x0, payload: Array("cd".utf8))
        }
    }

    @Test func pingWith126BytePayload() async throws {
        try await expectFailure(1002) { $0.write(opcode: 0x9, payload: [UInt8](repeating: 0x2A, count: 126)) }
    }

    @Test func continuationWithoutStart() async throws {
        try await expectFailure(1002) { $0.write(fin: true, opcode: 0x0, payload: Self.chatBytes("orphan")) }
    }

    @Test func newTextFrameDuringFragmentedMessage() async throws {
        try await expectFailure(1002) { victim in
            victim.write(fin: false, opcode: 0x1, payload: Array("{\"type\":".utf8))
            victim.write(fin: true, opcode: 0x1, payload: Self.chatBytes("interloper"))
        }
    }

    @Test(arguments: [UInt16(999), 1004, 1005, 1006, 1015, 2999, 5000])
    func invalidCloseCodes(code: UInt16) async throws {
        try await expectFailure(1002) { $0.sendClose(code: code) }
    }

    @Test func closeWithOneBytePayload() async throws {
        try await expectFailure(1002) { $0.write(opcode: 0x8, payload: [0x03]) }
    }

    // MARK: - Invalid UTF-8: 1007

    @Test func invalidUTF8InSingleTextFrame() async throws {
        try await expectFailure(1007) { $0.write(opcode: 0x1, payload: Self.invalidUTF8) }
    }

    @Test func invalidUTF8InsideJSONString() async throws {
        let payload = Array(#"{"type":"chat","payload":{"message":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}}"#.utf8)
        try await expectFailure(1007) { $0.write(opcode: 0x1, payload: payload) }
    }

    @Test func invalidUTF8SplitAcrossFragments() async throws {
        try await expectFailure(1007) { victim in
            victim.write(fin: false, opcode: 0x1, payload: Array(Self.invalidUTF8[0..<10]))
            victim.write(fin: false, opcode: 0x0, payload: Array(Self.invalidUTF8[10..<12]))
            victim.write(fin: true, opcode: 0x0, payload: Array(Self.invalidUTF8[12...]))
        }
    }

    @Test func invalidUTF8InCloseReason() async throws {
        try await expectFailure(1007) { $0.write(opcode: 0x8, payload: [0x03, 0xE8] + Self.invalidUTF8) }
    }

    // MARK: - Accepted input

    @Test func validCharacterSplitAcrossFragments() async throws {
        try await TestShard.with { shard in
            let alice = try await shard.join("split", name: "alice")
            _ = try await alice.hello()
            let message = "κόσμε 🎉 done"
            let bytes = Self.chatBytes(message, id: "split-1")
            // Cut inside the 4-byte emoji and inside a 2-byte Greek letter.
            let emoji = bytes.firstIndex(of: 0xF0)!
            let greek = bytes.firstIndex(of: 0xCE)!
            let cuts = [0, greek + 1, emoji + 2, emoji + 3, bytes.count]
            for i in 0..<(cuts.count - 1) {
                alice.write(fin: i == cuts.count - 2, opcode: i == 0 ? 0x1 : 0x0, payload: Array(bytes[cuts[i]..<cuts[i + 1]]))
            }
            #expect(try await alice.nextMessage() == .ack(.init(id: "split-1", seq: 1)))
            let chat = try await alice.chat()
            #expect(chat.message == message && chat.seq == 1 && chat.from == "alice")
            #expect(Array(chat.message.utf8) == Array(message.utf8))
            await alice.close()
        }
    }

    @Test func pingsInsideAFragmentedMessageAreAnswered() async throws {
        try await TestShard.with { shard in
            let alice = try await shard.join("interleave", name: "alice")
            _ = try await alice.hello()
            let bytes = Self.chatBytes("between pings", id: "i-1")
            alice.write(fin: false, opcode: 0x1, payload: Array(bytes[..<10]))
            alice.write(opcode: 0x9, payload: Array("p1".utf8))
            alice.write(fin: false, opcode: 0x0, payload: Array(bytes[10..<20]))
            alice.write(opcode: 0xA, payload: [])  // unsolicited pong: ignored
            alice.write(fin: true, opcode: 0x0, payload: Array(bytes[20...]))
            #expect(try await alice.next() == .pong(Array("p1".utf8)))
            #expect(try await alice.nextMessage() == .ack(.init(id: "i-1", seq: 1)))
            #expect(try await alice.chat().message == "between pings")
            await alice.close()
        }
    }

    @Test(arguments: [[UInt8](), Array("abc".utf8), [UInt8](repeating: 0xFE, count: 125)])
    func pingGetsPongWithSamePayload(payload: [UInt8]) async throws {
        try await TestShard.with { shard in
            let alice = try await shard.join("ping", name: "alice")
            _ = try await alice.hello()
            alice.write(opcode: 0x9, payload: payload)
            #expect(try await alice.next() == .pong(payload))
            try await expectChatWorks(alice, id: "p")
            await alice.close()
        }
    }

    @Test(arguments: [(UInt16(1000), "bye"), (3000, ""), (4999, "κόσμε"), (1001, "going")])
    func validCloseIsEchoed(code: UInt16, reason: String) async throws {
        try await TestShard.with { shard in
            let bystander = try await shard.join("bystanders", name: "bob")
            _ = try await bystander.hello()
            let alice = try await shard.join("closing", name: "alice")
            _ = try await alice.hello()
            alice.sendClose(code: code, reason: reason)
            guard case .close(let echoed, _) = try await alice.next() else {
                Issue.record("expected a close frame")
                return
            }
            #expect(echoed == code)
            try await expectDisconnect(alice)
            try await expectChatWorks(bystander, id: "b")
        }
    }

    @Test func emptyCloseIsAnsweredWith1000() async throws {
        try await TestShard.with { shard in
            let alice = try await shard.join("closing", name: "alice")
            _ = try await alice.hello()
            alice.write(opcode: 0x8, payload: [])
            #expect(try await alice.next() == .close(code: 1000, reason: ""))
            try await expectDisconnect(alice)
        }
    }

    // MARK: - Protocol errors answered with an `error` message (connection stays open)

    static let errorCases: [(name: String, frames: [(opcode: UInt8, fin: Bool, payload: [UInt8])], code: String)] = [
        ("binary", [(0x2, true, [0, 1, 2, 255])], "binary_not_supported"),
        ("fragmented binary", [(0x2, false, [1, 2]), (0x0, true, [3])], "binary_not_supported"),
        ("malformed JSON", [(0x1, true, Array("{\"type\":\"chat\",".utf8))], "bad_json"),
        ("not an object", [(0x1, true, Array("[1,2,3]".utf8))], "bad_json"),
        ("unknown type", [(0x1, true, Array(#"{"type":"dance","payload":{}}"#.utf8))], "unknown_type"),
        ("chat without message", [(0x1, true, Array(#"{"type":"chat","payload":{}}"#.utf8))], "missing_field"),
        ("chat without payload", [(0x1, true, Array(#"{"type":"chat","id":"x"}"#.utf8))], "missing_field"),
    ]

    @Test(arguments: 0..<errorCases.count)
    func errorReplyKeepsConnectionOpen(index: Int) async throws {
        let (name, frames, code) = Self.errorCases[index]
        try await TestShard.with { shard in
            let alice = try await shard.join("errors", name: "alice")
            _ = try await alice.hello()
            for frame in frames { alice.write(fin: frame.fin, opcode: frame.opcode, payload: frame.payload) }
            guard case .error(let error) = try await alice.nextMessage() else {
                Issue.record("\(name): expected an error message")
                return
            }
            #expect(error.code == code, "\(name)")
            #expect(!error.message.isEmpty)
            // Still open and still in the room: a chat goes through with the first seq.
            alice.send(text: ClientMessage.chat(message: "ok", id: "after-error").encoded())
            #expect(try await alice.nextMessage() == .ack(.init(id: "after-error", seq: 1)), "\(name)")
            #expect(try await alice.chat().message == "ok")
            await alice.close()
        }
    }

    // MARK: - Garbage

    @Test(arguments: ["http", "random"])
    func hugeGarbageFailsOnlyThatConnection(kind: String) async throws {
        try await TestShard.with { shard in
            let bystander = try await shard.join("bystanders", name: "bob")
            _ = try await bystander.hello()
            let victim = try await shard.join("target", name: "mallory")
            _ = try await victim.hello()
            var garbage: [UInt8]
            if kind == "http" {
                let line = Array("GET /rooms/target HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
                garbage = Array((0..<(1 << 20) / line.count).map { _ in line }.joined())
            } else {
                var state: UInt64 = 0x9E37_79B9_7F4A_7C15
                garbage = (0..<(1 << 20)).map { _ in
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    return UInt8(truncatingIfNeeded: state >> 56)
                }
            }
            victim.writeRaw(garbage)
            // Either a failing close frame arrives first, or the TCP connection is reset before it can be read.
            let event = try await victim.next()
            switch event {
            case .close(let code, _):
                #expect(code == 1002 || code == 1009 || code == 1007, "close \(String(describing: code))")
                try await expectDisconnect(victim)
            case .disconnected:
                break
            default:
                Issue.record("expected the connection to be failed, got \(event)")
            }
            try await expectChatWorks(bystander, id: "after-garbage")
            let fresh = try await shard.join("target", name: "trent")
            _ = try await fresh.hello()
            try await expectChatWorks(fresh, id: "fresh")
        }
    }
}

import Foundation
import Testing

@testable import RoomRingCore

/// Room ids: 1–128 characters of `A–Z a–z 0–9 . _ ~ -` (DESIGN.md §4).
@Suite("RoomID")
struct RoomIDTests {
    /// Exactly the allowed characters, spelled out rather than derived from ranges.
    static let allowed = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-".utf8)

    @Test("the allowed set has 66 characters")
    func allowedSetSize() {
        #expect(Self.allowed.count == 66)
        #expect(Set(Self.allowed).count == 66)
    }

    @Test("every allowed character is accepted alone and inside an id")
    func everyAllowedCharacter() throws {
        for byte in Self.allowed {
            let single = String(decoding: [byte], as: UTF8.self)
            let id = try #require(RoomID(single), "rejected \(single)")
            #expect(id.rawValue == single)
            #expect(RoomID(bytes: [byte])?.rawValue == single)
            #expect(RoomID("a\(single)b") != nil)
            #expect(RoomID.isValid([byte]))
        }
        let all = String(decoding: Self.allowed, as: UTF8.self)
        #expect(RoomID(all)?.rawValue == all)
    }

    @Test("every other ASCII byte 0...127 is rejected, alone and in the middle of an id")
    func everyOtherASCIIByte() {
        let allowed = Set(Self.allowed)
        var rejected = 0
        for byte in UInt8(0)...127 where !allowed.contains(byte) {
            let single = String(decoding: [byte], as: UTF8.self)
            #expect(RoomID(single) == nil, "accepted byte \(byte)")
            #expect(RoomID("ab\(single)cd") == nil, "accepted byte \(byte) inside an id")
            #expect(RoomID(bytes: [byte]) == nil, "accepted byte \(byte)")
            #expect(RoomID(bytes: Array("ab".utf8) + [byte] + Array("cd".utf8)) == nil)
            #expect(!RoomID.isValid([byte]))
            rejected += 1
        }
        #expect(rejected == 128 - 66)
    }

    @Test("every non-ASCII byte 128...255 is rejected as raw bytes")
    func everyHighByte() {
        for byte in UInt8(128)...255 {
            #expect(RoomID(bytes: [byte]) == nil, "accepted byte \(byte)")
            #expect(RoomID(bytes: [0x61, byte, 0x62]) == nil, "accepted byte \(byte) inside an id")
        }
    }

    @Test(
        "non-ASCII text is rejected",
        arguments: ["é", "café", "日本", "room-🎉", "Ａ", "\u{00A0}", "a\u{0301}", "ⅰ", "\u{FEFF}lobby", "lobby\u{200B}"])
    func nonASCII(text: String) {
        #expect(RoomID(text) == nil)
        #expect(RoomID(bytes: Array(text.utf8)) == nil)
    }

    @Test("length: 1 and 128 accepted, 0 and 129 rejected")
    func lengths() {
        #expect(RoomID.maxLength == 128)
        #expect(RoomID("a") != nil)
        #expect(RoomID(String(repeating: "a", count: 128)) != nil)
        #expect(RoomID(bytes: Array(repeating: UInt8(ascii: "z"), count: 128)) != nil)
        #expect(RoomID("") == nil)
        #expect(RoomID(bytes: [UInt8]()) == nil)
        #expect(RoomID(String(repeating: "a", count: 129)) == nil)
        #expect(RoomID(bytes: Array(repeating: UInt8(ascii: "z"), count: 129)) == nil)
        for length in 1...128 {
            #expect(RoomID(String(repeating: "~", count: length))?.rawValue.count == length)
        }
    }

    @Test("init(bytes:) accepts slices and non-contiguous collections")
    func bytesInitializer() {
        let text = Array("GET /rooms/lobby-7 HTTP/1.1".utf8)
        let slice = text[11..<18]
        #expect(RoomID(bytes: slice)?.rawValue == "lobby-7")
        #expect(RoomID(bytes: "game.7".utf8)?.rawValue == "game.7")
        #expect(RoomID(bytes: Array("game.7".utf8).lazy.map { $0 })?.rawValue == "game.7")
        #expect(RoomID(bytes: text[10..<18]) == nil, "includes the slash")
    }

    @Test("description is the raw id; ordering is by raw id")
    func descriptionAndOrder() throws {
        let lobby = try #require(RoomID("lobby"))
        #expect(lobby.description == "lobby")
        #expect("\(lobby)" == "lobby")
        let ids = try ["b", "a", "B", "a.1", "_"].map { try #require(RoomID($0)) }
        #expect(ids.sorted().map(\.rawValue) == ["B", "_", "a", "a.1", "b"])
        #expect(RoomID("Lobby") != lobby, "case-sensitive")
    }

    @Test("Codable: a plain JSON string, and invalid ids are rejected on decode")
    func codable() throws {
        let ids = try ["lobby", "a", String(repeating: "x", count: 128)].map { try #require(RoomID($0)) }
        let data = try JSONEncoder().encode(ids)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"lobby\""))
        #expect(try JSONDecoder().decode([RoomID].self, from: data) == ids)

        for bad in ["\"\"", "\"a/b\"", "\"room 1\"", "\"caf\\u00e9\"", "\"\(String(repeating: "x", count: 129))\"", "7", "null"] {
            #expect(throws: DecodingError.self, "decoded \(bad)") {
                _ = try JSONDecoder().decode([RoomID].self, from: Data("[\(bad)]".utf8))
            }
        }
    }
}

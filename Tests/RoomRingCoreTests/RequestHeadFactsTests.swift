import Testing
@testable import RoomRingCore

/// The facts the proxy forwards by, read by `scan` without building the head's strings.
@Suite("RequestHeadParser: scanned facts")
struct RequestHeadFactsTests {
    static func facts(_ lines: [String]) -> RequestHeadFacts? {
        var parser = RequestHeadParser()
        guard case .complete(let facts) = parser.scan(ParserHarness.head(lines)) else { return nil }
        return facts
    }

    static let upgrade = ["Host: h", "Upgrade: websocket", "Connection: Upgrade"]

    @Test func aHandshakeIsAnUpgradeWithNoBody() throws {
        let facts = try #require(Self.facts(["GET /rooms/lobby?name=a HTTP/1.1"] + Self.upgrade))
        #expect(facts == RequestHeadFacts(length: ParserHarness.head(["GET /rooms/lobby?name=a HTTP/1.1"] + Self.upgrade).count,
                                          room: RoomID("lobby"), isWebSocketUpgrade: true, requestID: nil, hasBody: false))
    }

    @Test(arguments: [
        (["Connection: keep-alive, Upgrade", "Upgrade: WebSocket"], true),
        (["connection: upgrade", "upgrade: h2c, websocket"], true),
        (["Connection: Upgrade"], false),
        (["Upgrade: websocket"], false),
        (["Connection: Upgraded", "Upgrade: websocket"], false),
        (["Connection: close", "Connection: upgrade", "Upgrade: websocket"], true),
    ])
    func upgradeNeedsBothTokens(headers: [String], upgrade: Bool) throws {
        let facts = try #require(Self.facts(["GET /rooms/a HTTP/1.1", "Host: h"] + headers))
        #expect(facts.isWebSocketUpgrade == upgrade)
    }

    @Test(arguments: [
        ([String](), false),
        (["Content-Length: 0"], false),
        (["content-length: 12"], true),
        (["Transfer-Encoding: chunked"], true),
        (["Content-Length: 00"], true),
    ])
    func aBodyFollowsALengthOrAChunkedEncoding(headers: [String], body: Bool) throws {
        let facts = try #require(Self.facts(["POST /rooms/a/messages HTTP/1.1", "Host: h"] + headers))
        #expect(facts.hasBody == body)
    }

    @Test func theFirstRequestIDIsKeptAsSent() throws {
        let facts = try #require(Self.facts(["GET / HTTP/1.1", "Host: h", "x-request-ID:  a\"b ", "X-Request-ID: second"]))
        #expect(facts.requestID == "a\"b")
        #expect(facts.room == nil)
    }

    @Test func theRoomIsDecodedAsTheFullParserDecodesIt() throws {
        let facts = try #require(Self.facts(["GET /rooms/%41b-c/events?x=%2F HTTP/1.1", "Host: h"]))
        #expect(facts.room == RoomID("Ab-c"))
    }
}

import Foundation
import Testing
import RoomRingClient
import RoomRingCore
import RoomRingShard

/// Bad requests to the publish, polling and event-stream endpoints get the documented status and JSON error, and
/// the shard keeps serving everybody else.
@Suite(.serialized) struct HTTPRefusalTests {
    static func code(_ response: HTTPClient.Response) -> String? { ErrorBody.code(of: response) }

    @Test(.timeLimit(.minutes(1)))
    func badRoomIdsMethodsAndSinceValues() async throws {
        try await TestShard.with { shard in
            let long = String(repeating: "r", count: 129)
            for path in ["/rooms/bad%2Fid/messages", "/rooms/\(long)/messages", "/rooms/%zz/events", "/rooms/a%20b/events"] {
                let post = try await shard.publish(String(path.dropFirst(7).prefix { $0 != "/" }), "{\"message\":\"x\"}")
                #expect(post.status == 400 && Self.code(post) == "invalid_room", "\(path): \(post.status)")
                let get = try await shard.http("GET", path)
                #expect(get.status == 400 && Self.code(get) == "invalid_room", "\(path): \(get.status)")
            }
            let put = try await shard.http("PUT", "/rooms/lobby/messages", body: Array("{}".utf8))
            #expect(put.status == 405 && put.header("Allow") == "GET, POST" && Self.code(put) == "method_not_allowed")
            let postEvents = try await shard.http("POST", "/rooms/lobby/events", body: Array("{}".utf8))
            #expect(postEvents.status == 405 && postEvents.header("Allow") == "GET")
            for query in ["since=-1", "since=abc", "since=", "since=99999999999999999999999"] {
                let poll = try await shard.http("GET", "/rooms/lobby/messages?\(query)")
                #expect(poll.status == 400 && Self.code(poll) == "bad_since", "\(query)")
            }
            let badID = try await shard.http("GET", "/rooms/lobby/events", headers: [("Last-Event-ID", "x1")])
            #expect(badID.status == 400 && Self.code(badID) == "bad_since")
            try await Self.expectStillServing(shard)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func publishingNeedsTheRightToken() async throws {
        try await TestShard.with { shard in
            let body = PublishRequest(message: "x").encoded()
            let missing = try await shard.publish("vault", body, token: nil)
            #expect(missing.status == 401 && Self.code(missing) == "unauthorized" && missing.header("WWW-Authenticate") == "Bearer")
            let wrong = try await shard.publish("vault", body, token: "guess")
            #expect(wrong.status == 403 && Self.code(wrong) == "forbidden")
            let longer = try await shard.publish("vault", body, token: "test-token-and-more")
            #expect(longer.status == 403)
            let basic = try await shard.publish("vault", body, token: nil, headers: [("Authorization", "Basic dGVzdA==")])
            #expect(basic.status == 401)
            // None of them reached the room.
            #expect(try await shard.poll("vault").seq == 0)
            #expect(try await shard.publish("vault", body).status == 201)
        }
        // --publish-token replaces the admin token for publishing.
        try await TestShard.with(configure: { $0.publishToken = "pub-secret" }) { (shard: ShardServer) async throws in
            #expect(try await shard.publish("vault", PublishRequest(message: "x").encoded()).status == 403)
            #expect(try await shard.publish("vault", PublishRequest(message: "x").encoded(), token: "pub-secret").status == 201)
        }
        // No token at all: publishing is off, reading is not.
        try await TestShard.with(configure: { $0.adminToken = nil }) { shard in
            let refused = try await shard.publish("vault", PublishRequest(message: "x").encoded(), token: "anything")
            #expect(refused.status == 403 && Self.code(refused) == "publish_disabled")
            #expect(try await shard.poll("vault").seq == 0)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func malformedAndOversizedBodies() async throws {
        try await TestShard.with(configure: { $0.maxMessageBytes = 1024 }) { shard in
            let cases: [(String, String)] = [
                ("{\"message\":", "bad_json"), ("not json", "bad_json"), ("[\"message\"]", "bad_json"), ("", "bad_json"),
                ("{}", "missing_field"), ("{\"text\":\"hi\"}", "missing_field"), ("{\"message\":42}", "invalid_field"),
                ("{\"message\":\"x\",\"id\":\"\"}", "invalid_field"), ("{\"message\":\"x\",\"from\":[1]}", "invalid_field"),
                ("{\"message\":\"x\",\"id\":\"\(String(repeating: "i", count: 129))\"}", "invalid_field"),
            ]
            for (body, expected) in cases {
                let response = try await shard.publish("inbox", body)
                #expect(response.status == 400 && Self.code(response) == expected, "\(body): \(response.status) \(response.text)")
            }
            let invalidUTF8 = try await shard.http("POST", "/rooms/inbox/messages",
                                                   headers: [("Authorization", "Bearer test-token")],
                                                   body: Array("{\"message\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8))
            #expect(invalidUTF8.status == 400)

            // Declared too large: refused from the head, before the body is read.
            let big = "{\"message\":\"\(String(repeating: "x", count: 1100))\"}"
            let declared = try await shard.publish("inbox", big)
            #expect(declared.status == 413 && Self.code(declared) == "too_large")
            // Chunked, so only counting tells: refused once it passes the limit.
            let chunk = String(repeating: "y", count: 600)
            let chunked = "POST /rooms/inbox/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n"
                + "c\r\n{\"message\":\"\r\n258\r\n\(chunk)\r\n258\r\n\(chunk)\r\n2\r\n\"}\r\n0\r\n\r\n"
            let answer = try HTTPClient.parse(try await HTTPClient.exchange(host: "127.0.0.1", port: shard.port,
                                                                            send: Array(chunked.utf8)))
            #expect(answer.status == 413 && answer.header("Connection") == "close")
            // Just under the limit is fine.
            let fits = PublishRequest(message: String(repeating: "z", count: 1000)).encoded()
            #expect(try await shard.publish("inbox", fits).status == 201)
            #expect(try await shard.poll("inbox").messages.map(\.message.count) == [1000])
            try await Self.expectStillServing(shard)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aSlowBodyTimesOutWith408() async throws {
        try await TestShard.with(configure: { $0.bodyTimeout = 0.5 }) { shard in
            let head = "POST /rooms/slow/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n"
                + "Content-Length: 40\r\n\r\n{\"message\":"
            let started = ContinuousClock.now
            let raw = try await HTTPClient.exchange(host: "127.0.0.1", port: shard.port, send: Array(head.utf8),
                                                    timeout: .seconds(5))
            let response = try HTTPClient.parse(raw)
            #expect(response.status == 408 && Self.code(response) == "body_timeout")
            #expect(ContinuousClock.now - started < .seconds(4), "answered at the body timeout and closed")
            #expect(try await shard.poll("slow").seq == 0)
            try await Self.expectStillServing(shard)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func roomsOfAnotherShardAreMisdirected() async throws {
        let ring = ShardHTTPTests.twoShardRing(epoch: 4)
        try await TestShard.with(ring: ring) { shard in
            let theirs = room(ownedBy: "s2", in: ring)
            let post = try await shard.publish(theirs, PublishRequest(message: "x").encoded())
            let poll = try await shard.http("GET", "/rooms/\(theirs)/messages")
            let events = try await shard.http("GET", "/rooms/\(theirs)/events")
            for response in [post, poll, events] {
                #expect(response.status == 421 && response.header("RoomRing-Epoch") == "4" && Self.code(response) == "not_owner")
            }
            #expect(try await shard.rooms().room(theirs) == nil)
            let ours = room(ownedBy: "s1", in: ring)
            #expect(try await shard.publish(ours, PublishRequest(message: "x").encoded()).status == 201)
        }
    }

    /// Another room still takes publishes, polls and members.
    static func expectStillServing(_ shard: ShardServer, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let member = try await shard.join("healthy-room")
        let hello = try await member.hello()
        let published = try await shard.publish("healthy-room", PublishRequest(message: "still here").encoded())
        #expect(published.status == 201, sourceLocation: sourceLocation)
        #expect(try await member.chat().message == "still here", sourceLocation: sourceLocation)
        #expect(try await shard.poll("healthy-room", since: hello.seq).messages.last?.message == "still here",
                sourceLocation: sourceLocation)
        await member.close()
    }
}

import Foundation
import Testing

@testable import RoomRingCore

/// The ring document of DESIGN.md §2: its JSON form, defaults, validation rules and epoch ordering.
@Suite("RingDocument")
struct RingDocumentTests {
    /// Verbatim from DESIGN.md §2.
    static let designExample = """
        { "epoch": 7, "vnodes": 160,
          "shards": [ { "id": "s1", "address": "127.0.0.1:9001", "admin": "127.0.0.1:9101", "weight": 1, "state": "active" },
                      { "id": "s2", "address": "127.0.0.1:9002", "admin": "127.0.0.1:9102", "weight": 1, "state": "draining" } ] }
        """

    /// Decodes `json`, returning the error (nil when it decoded and validated).
    static func error(decoding json: String) -> RingDocumentError? {
        do {
            _ = try RingDocument.decode(Array(json.utf8))
            return nil
        } catch {
            return error
        }
    }

    static func error(validating document: RingDocument) -> RingDocumentError? {
        do {
            try document.validate()
            return nil
        } catch {
            return error
        }
    }

    /// A one-or-two-shard document with one field of the first shard replaced by raw JSON.
    static func json(
        epoch: String = "1", vnodes: String? = nil, id: String = "\"s1\"", address: String = "\"127.0.0.1:9001\"",
        admin: String = "\"127.0.0.1:9101\"", weight: String? = nil, state: String? = nil, second: Bool = false
    ) -> String {
        var first = "\"id\": \(id), \"address\": \(address), \"admin\": \(admin)"
        if let weight { first += ", \"weight\": \(weight)" }
        if let state { first += ", \"state\": \(state)" }
        var shards = "{\(first)}"
        if second { shards += ", {\"id\": \"s2\", \"address\": \"127.0.0.1:9002\", \"admin\": \"127.0.0.1:9102\"}" }
        let vnodesField = vnodes.map { "\"vnodes\": \($0), " } ?? ""
        return "{\"epoch\": \(epoch), \(vnodesField)\"shards\": [\(shards)]}"
    }

    // MARK: Decoding

    @Test("decodes the example of DESIGN.md §2")
    func designExampleDecodes() throws {
        let document = try RingDocument.decode(Array(Self.designExample.utf8))
        #expect(document.epoch == 7)
        #expect(document.vnodes == 160)
        #expect(
            document.shards == [
                RingDocument.Shard(id: "s1", address: "127.0.0.1:9001", admin: "127.0.0.1:9101", weight: 1, state: .active),
                RingDocument.Shard(
                    id: "s2", address: "127.0.0.1:9002", admin: "127.0.0.1:9102", weight: 1, state: .draining),
            ])
        #expect(document.shard(id: "s2")?.state == .draining)
        #expect(document.shard(id: "s3") == nil)
        // Only s1 is active, so it owns every room.
        let ring = HashRing(document)
        #expect(ring.owner(ofKey: "lobby")?.id == "s1")
    }

    @Test("missing vnodes, weight and state take their defaults")
    func defaults() throws {
        let document = try RingDocument.decode(Array(Self.json().utf8))
        #expect(RingDocument.defaultVNodes == 1024)
        #expect(document.vnodes == 1024)
        #expect(document.shards.count == 1)
        #expect(document.shards[0].weight == 1)
        #expect(document.shards[0].state == .active)
        // The same defaults as the memberwise initializers.
        #expect(document == RingDocument(epoch: 1, shards: [.init(id: "s1", address: "127.0.0.1:9001", admin: "127.0.0.1:9101")]))
        // Explicit values win over defaults.
        let explicit = try RingDocument.decode(Array(Self.json(vnodes: "40", weight: "3", state: "\"draining\"", second: true).utf8))
        #expect(explicit.vnodes == 40)
        #expect(explicit.shards[0].weight == 3)
        #expect(explicit.shards[0].state == .draining)
    }

    @Test("unknown keys are ignored, so older processes read newer rings")
    func unknownKeys() throws {
        let json = """
            {"epoch": 3, "comment": "x", "shards": [{"id": "s1", "address": "a:1", "admin": "a:2", "zone": "eu"}]}
            """
        let document = try RingDocument.decode(Array(json.utf8))
        #expect(document.epoch == 3)
        #expect(document.shards.map(\.id) == ["s1"])
    }

    @Test("epochs use the full UInt64 range without losing precision")
    func largeEpoch() throws {
        for epoch: UInt64 in [0, 9_007_199_254_740_993, UInt64.max] {
            let document = try RingDocument.decode(Array(Self.json(epoch: "\(epoch)").utf8))
            #expect(document.epoch == epoch)
            #expect(try RingDocument.decode(document.encoded()).epoch == epoch)
        }
    }

    // MARK: Encoding

    static let sample = RingDocument(
        epoch: 42, vnodes: 64,
        shards: [
            .init(id: "s1", address: "127.0.0.1:9001", admin: "127.0.0.1:9101"),
            .init(id: "shard-b.eu", address: "[::1]:9002", admin: "[::1]:9102", weight: 5, state: .draining),
            .init(id: "s_3~x", address: "shard-3.rr:9003", admin: "localhost:9103", weight: 100),
        ])

    @Test("encoded() then decode() gives the same document")
    func roundTrip() throws {
        #expect(try RingDocument.decode(Self.sample.encoded()) == Self.sample)
        let example = try RingDocument.decode(Array(Self.designExample.utf8))
        #expect(try RingDocument.decode(example.encoded()) == example)
    }

    @Test("encoded() is stable JSON with sorted keys and every field written out")
    func encodedForm() throws {
        let data = Self.sample.encoded()
        #expect(data == Self.sample.encoded())
        let text = String(decoding: data, as: UTF8.self)
        let epoch = try #require(text.range(of: "\"epoch\""))
        let shards = try #require(text.range(of: "\"shards\""))
        let vnodes = try #require(text.range(of: "\"vnodes\""))
        #expect(epoch.lowerBound < shards.lowerBound && shards.lowerBound < vnodes.lowerBound)
        #expect(text.contains("\n"), "pretty-printed")
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["epoch"] as? Int == 42)
        #expect(object["vnodes"] as? Int == 64)
        let list = try #require(object["shards"] as? [[String: Any]])
        #expect(list.count == 3)
        #expect(list[0]["weight"] as? Int == 1)
        #expect(list[0]["state"] as? String == "active")
        #expect(list[1]["state"] as? String == "draining")
        #expect(list[1]["address"] as? String == "[::1]:9002")
        #expect(Set(list[2].keys) == ["id", "address", "admin", "weight", "state"])
    }

    // MARK: Validation

    @Test("valid documents pass validation")
    func validDocuments() throws {
        try Self.sample.validate()
        for json in [
            Self.json(), Self.json(vnodes: "1"), Self.json(vnodes: "10000"), Self.json(weight: "1"),
            Self.json(weight: "100"), Self.json(state: "\"draining\"", second: true),
            Self.json(id: "\"\(String(repeating: "a", count: 64))\""), Self.json(id: "\"A-z_0.9~\""),
            Self.json(address: "\"[::1]:1\"", admin: "\"shard-0.rr:65535\""),
        ] {
            #expect(Self.error(decoding: json) == nil, "\(json)")
        }
    }

    @Test(
        "each broken rule is rejected with its code",
        arguments: [
            // Shard ids.
            (json(second: true).replacingOccurrences(of: "\"s2\"", with: "\"s1\""), "duplicate_shard_id"),
            (json(id: "\"a/b\""), "bad_shard_id"),
            (json(id: "\"\""), "bad_shard_id"),
            (json(id: "\"s 1\""), "bad_shard_id"),
            (json(id: "\"sé\""), "bad_shard_id"),
            (json(id: "\"\(String(repeating: "a", count: 65))\""), "bad_shard_id"),
            // Addresses, in both fields.
            (json(address: "\"nohost\""), "bad_address"),
            (json(address: "\"1.2.3.4:99999\""), "bad_address"),
            (json(address: "\":80\""), "bad_address"),
            (json(address: "\"host:\""), "bad_address"),
            (json(address: "\"\""), "bad_address"),
            (json(address: "\"::1:80\""), "bad_address"),
            (json(admin: "\"nohost\""), "bad_address"),
            (json(admin: "\"1.2.3.4:65536\""), "bad_address"),
            // Shard sets.
            ("{\"epoch\": 1, \"shards\": []}", "no_shards"),
            (json(state: "\"draining\""), "no_active_shard"),
            // Numbers.
            (json(weight: "0"), "bad_weight"),
            (json(weight: "-1"), "bad_weight"),
            (json(weight: "101"), "bad_weight"),
            (json(vnodes: "0"), "bad_vnodes"),
            (json(vnodes: "-160"), "bad_vnodes"),
            (json(vnodes: "10001"), "bad_vnodes"),
            // Not JSON, or not a ring.
            ("", "malformed_json"),
            ("{", "malformed_json"),
            ("not json", "malformed_json"),
            ("[]", "malformed_json"),
            ("null", "malformed_json"),
            ("{\"epoch\": 1}", "malformed_json"),
            ("{\"shards\": []}", "malformed_json"),
            (json(id: "null"), "malformed_json"),
            ("{\"epoch\": 1, \"shards\": [{\"id\": \"s1\", \"admin\": \"a:1\"}]}", "malformed_json"),
            ("{\"epoch\": 1, \"shards\": [{\"id\": \"s1\", \"address\": \"a:1\"}]}", "malformed_json"),
            // Wrong types.
            (json(epoch: "\"7\""), "malformed_json"),
            (json(epoch: "-1"), "malformed_json"),
            (json(epoch: "1.5"), "malformed_json"),
            (json(vnodes: "\"160\""), "malformed_json"),
            (json(id: "1"), "malformed_json"),
            (json(address: "9001"), "malformed_json"),
            (json(weight: "\"1\""), "malformed_json"),
            (json(weight: "1.5"), "malformed_json"),
            (json(state: "\"retired\""), "malformed_json"),
            (json(state: "\"Active\""), "malformed_json"),
            (json(state: "1"), "malformed_json"),
            ("{\"epoch\": 1, \"shards\": {}}", "malformed_json"),
        ])
    func rejected(json: String, code: String) throws {
        let error = try #require(Self.error(decoding: json), "accepted: \(json)")
        #expect(error.code == code, "\(json): \(error)")
        #expect(!error.description.isEmpty)
    }

    @Test("validate() reports the offending shard and value")
    func validationDetails() {
        func shard(_ id: String, _ address: String = "h:1", admin: String = "h:2", weight: Int = 1) -> RingDocument.Shard {
            .init(id: id, address: address, admin: admin, weight: weight)
        }
        let cases: [(RingDocument, RingDocumentError.Reason)] = [
            (RingDocument(epoch: 1, shards: []), .noShards),
            (RingDocument(epoch: 1, vnodes: 0, shards: [shard("s1")]), .badVNodes(0)),
            (RingDocument(epoch: 1, shards: [shard("s1"), shard("s1")]), .duplicateShardID("s1")),
            (RingDocument(epoch: 1, shards: [shard("a/b")]), .badShardID("a/b")),
            (RingDocument(epoch: 1, shards: [shard("s1"), shard("s2", "nohost")]), .badAddress(shard: "s2", "nohost")),
            (RingDocument(epoch: 1, shards: [shard("s1", admin: ":80")]), .badAddress(shard: "s1", ":80")),
            (RingDocument(epoch: 1, shards: [shard("s1", weight: 0)]), .badWeight(shard: "s1", 0)),
            (
                RingDocument(epoch: 1, shards: [.init(id: "s1", address: "h:1", admin: "h:2", state: .draining)]),
                .noActiveShard
            ),
        ]
        for (document, reason) in cases {
            #expect(Self.error(validating: document)?.reason == reason)
        }
    }

    @Test("every error has a distinct code and a human description naming the problem")
    func descriptions() {
        let errors: [(RingDocumentError, String, [String])] = [
            (.init(.malformedJSON("unexpected end")), "malformed_json", ["unexpected end"]),
            (.init(.noShards), "no_shards", []),
            (.init(.noActiveShard), "no_active_shard", []),
            (.init(.duplicateShardID("s7")), "duplicate_shard_id", ["s7"]),
            (.init(.badShardID("a/b")), "bad_shard_id", ["a/b"]),
            (.init(.badAddress(shard: "s3", "nohost")), "bad_address", ["s3", "nohost"]),
            (.init(.badWeight(shard: "s4", 0)), "bad_weight", ["s4", "0"]),
            (.init(.badVNodes(-2)), "bad_vnodes", ["-2"]),
            (.staleEpoch(current: 7, offered: 5), "stale_epoch", ["7", "5"]),
        ]
        #expect(Set(errors.map(\.1)).count == errors.count)
        for (error, code, mentions) in errors {
            #expect(error.code == code)
            let text = error.description
            #expect(text.count > 10 && text.contains(" "), "\(code): \(text)")
            #expect(text != code && !text.contains("Reason"), "\(code): \(text)")
            for mention in mentions { #expect(text.contains(mention), "\(code): \(text)") }
            #expect("\(error)" == text)
        }
    }

    // MARK: Epochs

    @Test("accepts only a strictly higher epoch, whatever the content")
    func accepts() {
        func document(_ epoch: UInt64) -> RingDocument { RingDocument(epoch: epoch, shards: Self.sample.shards) }
        let current = document(7)
        #expect(current.accepts(document(8)))
        #expect(current.accepts(document(UInt64.max)))
        #expect(!current.accepts(document(7)))
        #expect(!current.accepts(current))
        #expect(!current.accepts(document(6)))
        #expect(!current.accepts(document(0)))
        #expect(document(0).accepts(document(1)))
        #expect(!document(UInt64.max).accepts(document(UInt64.max)))
        // Same epoch with different shards is still refused.
        #expect(!current.accepts(RingDocument(epoch: 7, vnodes: 1, shards: [Self.sample.shards[0]])))
    }

    @Test("staleEpoch is an error with code stale_epoch and both epochs in its description")
    func staleEpoch() {
        let error = RingDocumentError.staleEpoch(current: 12, offered: 9)
        #expect(error.code == "stale_epoch")
        #expect(error.description.contains("12") && error.description.contains("9"))
        #expect(error == .staleEpoch(current: 12, offered: 9))
        #expect(error != .staleEpoch(current: 12, offered: 10))
        #expect(error.reason == .staleEpoch(current: 12, offered: 9))
    }
}

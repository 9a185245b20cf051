import RoomRingCore
import Testing

@Suite("RequestID") struct RequestIDTests {
    @Test("a client's id is kept only when it is safe to log and forward")
    func sanitized() {
        for good in ["a", "trace-42", "0af7651916cd43dd8448eb211c80319c", "svc.api:req_1", String(repeating: "x", count: 64)] {
            #expect(RequestIDGenerator.sanitized(good) == good)
        }
        for bad: String? in [nil, "", String(repeating: "x", count: 65), "has space", "quote\"d", "new\nline",
                             "cr\rlf", "tab\t", "brace{}", "slash/", "é", "nul\u{0}", "semi;colon", "a,b"] {
            #expect(RequestIDGenerator.sanitized(bad) == nil, "\(String(describing: bad))")
        }
    }

    @Test("generated ids are unique, carry the prefix, and pass sanitizing")
    func generated() {
        let generator = RequestIDGenerator(prefix: "p1")
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let id = generator.next()
            #expect(id.hasPrefix("p1-"))
            #expect(RequestIDGenerator.sanitized(id) == id)
            seen.insert(id)
        }
        #expect(seen.count == 10_000)
        // Two processes (random prefixes) do not share ids.
        #expect(RequestIDGenerator().next() != RequestIDGenerator().next())
    }
}

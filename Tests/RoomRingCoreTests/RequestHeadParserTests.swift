import Testing
@testable import RoomRingCore

/// Helpers shared by the request-head parser suites.
enum ParserHarness {
    typealias ParseResult = RequestHeadParser.Result

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// A complete head: each line followed by CRLF, then the empty line.
    static func head(_ lines: [String]) -> [UInt8] {
        bytes(lines.map { $0 + "\r\n" }.joined() + "\r\n")
    }

    static func header(_ name: String, _ value: String) -> RequestHead.Header { .init(name: name, value: value) }

    /// What ``RequestHeadParser/scan(_:)`` must answer where ``RequestHeadParser/feed(_:)`` answered `result`.
    static func scanned(_ result: ParseResult) -> RequestHeadParser.ScanResult {
        switch result {
        case .needMore: .needMore
        case .complete(let head): .complete(RequestHeadFacts(head))
        case .rejected(let error): .rejected(error)
        }
    }

    /// Feeds `chunks` into a fresh parser and returns the first final result (`.needMore` if none), and whether every
    /// later feed (the remaining chunks plus two extra ones) repeated that final result. A second parser scans the
    /// same chunks, and must agree at every step: the proxy's path is checked by every parser test.
    static func run(_ chunks: [[UInt8]], limits: RequestHeadParser.Limits = .init()) -> (result: ParseResult, stable: Bool) {
        var parser = RequestHeadParser(limits: limits)
        var scanner = RequestHeadParser(limits: limits)
        var final: ParseResult?
        var stable = true
        for chunk in chunks {
            let result = parser.feed(chunk)
            let scan = scanner.scan(chunk)
            if scan != scanned(result) { Issue.record("scan answered \(scan) where feed answered \(result)") }
            if let final {
                if result != final { stable = false }
            } else if result != .needMore {
                final = result
            }
        }
        guard let final else { return (.needMore, stable) }
        let buffered = parser.bufferedBytes
        if parser.feed(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) != final { stable = false }
        if parser.feed([0x16, 0x03, 0x01, 0x00]) != final { stable = false }
        if parser.bufferedBytes != buffered { stable = false }
        return (final, stable)
    }

    static func whole(_ raw: [UInt8], limits: RequestHeadParser.Limits = .init()) -> ParseResult {
        run([raw], limits: limits).result
    }

    static func byteByByte(_ raw: [UInt8], limits: RequestHeadParser.Limits = .init()) -> (result: ParseResult, stable: Bool) {
        run(raw.map { [$0] }, limits: limits)
    }

    /// The offsets at which feeding `raw` as two chunks (`raw[..<offset]`, `raw[offset...]`) did not end in
    /// `expected`, or where a feed after the final result changed it. Empty when every split agrees.
    static func splitMismatches(
        _ raw: [UInt8], expected: ParseResult, limits: RequestHeadParser.Limits = .init(),
        offsets: [Int]? = nil
    ) -> [Int] {
        (offsets ?? Array(0...raw.count)).filter { offset in
            let (result, stable) = run([Array(raw[..<offset]), Array(raw[offset...])], limits: limits)
            return result != expected || !stable
        }
    }
}

/// One valid head and everything the parser must report for it.
struct ValidHeadCase: Sendable, CustomTestStringConvertible {
    let name: String
    let raw: [UInt8]
    let expected: RequestHead
    var testDescription: String { name }

    init(
        _ name: String, raw: [UInt8], method: String, target: String, path: String, query: String?, minor: Int,
        headers: [RequestHead.Header], room: String?, subpath: String = ""
    ) {
        self.name = name
        self.raw = raw
        expected = RequestHead(
            method: method, target: target, path: path, query: query, minorVersion: minor, headers: headers,
            room: room.map { RoomID($0)! }, roomSubpath: subpath, length: raw.count)
    }

    typealias H = RequestHead.Header
    static let room128 = String(repeating: "a1-_.~", count: 21) + "xy"  // 128 characters

    static let all: [ValidHeadCase] = [
        .init(
            "WebSocket upgrade with query",
            raw: ParserHarness.head([
                "GET /rooms/lobby?name=alice&client=c1&since=5 HTTP/1.1", "Host: 127.0.0.1:8080",
                "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version: 13",
            ]),
            method: "GET", target: "/rooms/lobby?name=alice&client=c1&since=5", path: "/rooms/lobby",
            query: "name=alice&client=c1&since=5", minor: 1,
            headers: [
                H(name: "Host", value: "127.0.0.1:8080"), H(name: "Upgrade", value: "websocket"),
                H(name: "Connection", value: "Upgrade"), H(name: "Sec-WebSocket-Key", value: "dGhlIHNhbXBsZSBub25jZQ=="),
                H(name: "Sec-WebSocket-Version", value: "13"),
            ],
            room: "lobby"),
        .init(
            "GET / (demo page)", raw: ParserHarness.head(["GET / HTTP/1.1", "Host: localhost", "Accept: */*"]),
            method: "GET", target: "/", path: "/", query: nil, minor: 1,
            headers: [H(name: "Host", value: "localhost"), H(name: "Accept", value: "*/*")], room: nil),
        .init(
            "GET /healthz", raw: ParserHarness.head(["GET /healthz HTTP/1.1", "host: a"]),
            method: "GET", target: "/healthz", path: "/healthz", query: nil, minor: 1,
            headers: [H(name: "host", value: "a")], room: nil),
        .init(
            "HTTP/1.0 without Host", raw: ParserHarness.head(["GET /rooms/lobby HTTP/1.0"]),
            method: "GET", target: "/rooms/lobby", path: "/rooms/lobby", query: nil, minor: 0, headers: [],
            room: "lobby"),
        .init(
            "HTTP/1.0 with headers", raw: ParserHarness.head(["HEAD /readyz?x HTTP/1.0", "Connection: close"]),
            method: "HEAD", target: "/readyz?x", path: "/readyz", query: "x", minor: 0,
            headers: [H(name: "Connection", value: "close")], room: nil),
        .init(
            "POST publish with Content-Length",
            raw: ParserHarness.head([
                "POST /rooms/x/messages HTTP/1.1", "Host: shard:9001", "Authorization: Bearer t0k3n",
                "Content-Type: application/json", "Content-Length: 17",
            ]),
            method: "POST", target: "/rooms/x/messages", path: "/rooms/x/messages", query: nil, minor: 1,
            headers: [
                H(name: "Host", value: "shard:9001"), H(name: "Authorization", value: "Bearer t0k3n"),
                H(name: "Content-Type", value: "application/json"), H(name: "Content-Length", value: "17"),
            ],
            room: "x", subpath: "/messages"),
        .init(
            "repeated identical Content-Length",
            raw: ParserHarness.head(["PUT /ring HTTP/1.1", "Host: h", "Content-Length: 0", "content-length: 0"]),
            method: "PUT", target: "/ring", path: "/ring", query: nil, minor: 1,
            headers: [H(name: "Host", value: "h"), H(name: "Content-Length", value: "0"), H(name: "content-length", value: "0")],
            room: nil),
        .init(
            "percent-encoded room", raw: ParserHarness.head(["GET /rooms/%41bc?since=0 HTTP/1.1", "Host: h"]),
            method: "GET", target: "/rooms/%41bc?since=0", path: "/rooms/%41bc", query: "since=0", minor: 1,
            headers: [H(name: "Host", value: "h")], room: "Abc"),
        .init(
            "room with subpath (SSE)",
            raw: ParserHarness.head(["GET /rooms/r1/events HTTP/1.1", "Host: h", "Accept: text/event-stream", "Last-Event-ID: 7"]),
            method: "GET", target: "/rooms/r1/events", path: "/rooms/r1/events", query: nil, minor: 1,
            headers: [H(name: "Host", value: "h"), H(name: "Accept", value: "text/event-stream"), H(name: "Last-Event-ID", value: "7")],
            room: "r1", subpath: "/events"),
        .init(
            "16-letter method, every room character, trailing slash, empty query",
            raw: ParserHarness.head(["ABCDEFGHIJKLMNOP /rooms/a.b_c~d-e/? HTTP/1.1", "Host: h"]),
            method: "ABCDEFGHIJKLMNOP", target: "/rooms/a.b_c~d-e/?", path: "/rooms/a.b_c~d-e/", query: "", minor: 1,
            headers: [H(name: "Host", value: "h")], room: "a.b_c~d-e", subpath: "/"),
        .init(
            "128-character room", raw: ParserHarness.head(["GET /rooms/\(room128)/x/y HTTP/1.1", "Host: h"]),
            method: "GET", target: "/rooms/\(room128)/x/y", path: "/rooms/\(room128)/x/y", query: nil, minor: 1,
            headers: [H(name: "Host", value: "h")], room: room128, subpath: "/x/y"),
        .init(
            "header values with tabs, spaces, empty values, UTF-8",
            raw: ParserHarness.head([
                "GET /healthz HTTP/1.1", "Host:example.com", "X-Tabbed:\tvalue\t ", "X-Spaced:    spaced out    ",
                "X-Empty:", "X-Blank: \t ", "X-Inner: a\tb  c", "X-Utf8: caf\u{E9}", "!#$%&'*+-.^_`|~09azAZ: token",
            ]),
            method: "GET", target: "/healthz", path: "/healthz", query: nil, minor: 1,
            headers: [
                H(name: "Host", value: "example.com"), H(name: "X-Tabbed", value: "value"),
                H(name: "X-Spaced", value: "spaced out"), H(name: "X-Empty", value: ""), H(name: "X-Blank", value: ""),
                H(name: "X-Inner", value: "a\tb  c"), H(name: "X-Utf8", value: "caf\u{E9}"),
                H(name: "!#$%&'*+-.^_`|~09azAZ", value: "token"),
            ],
            room: nil),
        .init(
            "100 headers (the default limit)",
            raw: ParserHarness.head(["GET /rooms/big HTTP/1.1", "Host: h"] + (1...99).map { "X-Header-\($0): value-\($0)" }),
            method: "GET", target: "/rooms/big", path: "/rooms/big", query: nil, minor: 1,
            headers: [H(name: "Host", value: "h")] + (1...99).map { H(name: "X-Header-\($0)", value: "value-\($0)") },
            room: "big"),
    ]
}

@Suite("RequestHeadParser: valid heads")
struct RequestHeadParserTests {
    typealias P = ParserHarness

    @Test("whole head in one chunk gives every field", arguments: ValidHeadCase.all)
    func wholeChunk(_ c: ValidHeadCase) throws {
        var parser = RequestHeadParser()
        let result = parser.feed(c.raw)
        guard case .complete(let head) = result else {
            Issue.record("expected .complete, got \(result)")
            return
        }
        #expect(head.method == c.expected.method)
        #expect(head.target == c.expected.target)
        #expect(head.path == c.expected.path)
        #expect(head.query == c.expected.query)
        #expect(head.minorVersion == c.expected.minorVersion)
        #expect(head.headers == c.expected.headers)
        #expect(head.room == c.expected.room)
        #expect(head.roomSubpath == c.expected.roomSubpath)
        #expect(head.length == c.raw.count)
        #expect(head == c.expected)
        #expect(parser.bufferedBytes == c.raw)
    }

    @Test("split into two chunks at every offset gives the same head", arguments: ValidHeadCase.all)
    func everySplit(_ c: ValidHeadCase) {
        #expect(P.splitMismatches(c.raw, expected: .complete(c.expected)) == [])
    }

    @Test("fed byte by byte gives the same head", arguments: ValidHeadCase.all)
    func byteByByte(_ c: ValidHeadCase) {
        var parser = RequestHeadParser()
        for (i, byte) in c.raw.enumerated() {
            let result = parser.feed([byte])
            if i < c.raw.count - 1 {
                #expect(result == .needMore, "byte \(i) of \(c.raw.count)")
                if result != .needMore { return }
            } else {
                #expect(result == .complete(c.expected))
            }
        }
        let (result, stable) = P.byteByByte(c.raw)
        #expect(result == .complete(c.expected))
        #expect(stable, "a feed after the final result changed it")
    }

    /// A masked WebSocket text frame and a few hostile bytes (NUL, bare LF, CR) that must not be looked at.
    static let trailing: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58, 0x00, 0x0A, 0x0D, 0x0A, 0x0D]

    @Test("bytes after the head in the same chunk: length points at the end of the head", arguments: ValidHeadCase.all)
    func trailingBytes(_ c: ValidHeadCase) {
        let stream = c.raw + Self.trailing
        var parser = RequestHeadParser()
        let result = parser.feed(stream)
        #expect(result == .complete(c.expected))
        if case .complete(let head) = result {
            #expect(head.length == c.raw.count)
            #expect(Array(parser.bufferedBytes[head.length...]) == Self.trailing)
            #expect(Array(parser.bufferedBytes[..<head.length]) == c.raw)
        }
        #expect(P.splitMismatches(stream, expected: .complete(c.expected)) == [])
    }

    @Test func lengthIsTheByteCountOfTheHead() throws {
        var parser = RequestHeadParser()
        let result = parser.feed(P.bytes("GET / HTTP/1.0\r\n\r\nxyz"))
        guard case .complete(let head) = result else { Issue.record("got \(result)"); return }
        #expect(head.length == 18)
        var parser2 = RequestHeadParser()
        guard case .complete(let head2) = parser2.feed(P.bytes("GET /a HTTP/1.1\r\nHost: h\r\n\r\n\r\n")) else {
            Issue.record("not complete"); return
        }
        #expect(head2.length == 28)
    }

    @Test func headOfExactlyMaxHeadBytesIsAccepted() {
        let limits = RequestHeadParser.Limits(maxHeadBytes: 64, maxHeaders: 4)
        let prefix = "GET / HTTP/1.1\r\nHost: h\r\nX: "
        let raw = P.bytes(prefix + String(repeating: "v", count: 64 - prefix.utf8.count - 4) + "\r\n\r\n")
        #expect(raw.count == 64)
        guard case .complete(let head) = P.whole(raw, limits: limits) else {
            Issue.record("a head of exactly maxHeadBytes must be accepted"); return
        }
        #expect(head.length == 64)
        #expect(P.splitMismatches(raw, expected: .complete(head), limits: limits) == [])
        // Bytes after the head do not count against the limit.
        #expect(P.whole(raw + Array(repeating: 0x41, count: 500), limits: limits) == .complete(head))
    }

    @Test func headersUpToMaxHeadersAreAccepted() {
        let limits = RequestHeadParser.Limits(maxHeadBytes: 8192, maxHeaders: 3)
        let raw = P.head(["GET / HTTP/1.1", "Host: h", "A: 1", "B: 2"])
        guard case .complete(let head) = P.whole(raw, limits: limits) else { Issue.record("rejected"); return }
        #expect(head.headers.count == 3)
    }

    @Test func defaultLimits() {
        let limits = RequestHeadParser.Limits()
        #expect(limits.maxHeadBytes == 8192)
        #expect(limits.maxHeaders == 100)
        #expect(RequestHeadParser().limits == limits)
    }

    @Test func emptyFeedsAreHarmless() {
        var parser = RequestHeadParser()
        #expect(parser.feed([UInt8]()) == .needMore)
        #expect(parser.feed([UInt8]()) == .needMore)
        guard case .complete(let head) = parser.feed(P.bytes("GET / HTTP/1.0\r\n\r\n")) else {
            Issue.record("empty feeds broke the parser"); return
        }
        #expect(head.path == "/")
    }

    @Test func afterCompleteFurtherFeedsReturnTheSameHead() {
        var parser = RequestHeadParser()
        let first = parser.feed(P.bytes("GET /rooms/a HTTP/1.1\r\nHost: h\r\n\r\n"))
        guard case .complete = first else { Issue.record("got \(first)"); return }
        let buffered = parser.bufferedBytes
        #expect(parser.feed(P.bytes("POST /other HTTP/1.0\r\n\r\n")) == first)
        #expect(parser.feed([0x00, 0x0A]) == first)
        #expect(parser.bufferedBytes == buffered)
    }

    // MARK: queries

    static func head(target: String, _ headers: [String] = ["Host: h"]) -> RequestHead? {
        guard case .complete(let head) = P.whole(P.head(["GET \(target) HTTP/1.1"] + headers)) else { return nil }
        return head
    }

    static func pairs(_ head: RequestHead) -> [[String]] { head.queryItems.map { [$0.name, $0.value] } }

    @Test func queryItemsOfTheConnectURL() throws {
        let head = try #require(Self.head(target: "/rooms/lobby?name=alice&client=c1&since=5"))
        #expect(Self.pairs(head) == [["name", "alice"], ["client", "c1"], ["since", "5"]])
        #expect(head.queryValue("name") == "alice")
        #expect(head.queryValue("client") == "c1")
        #expect(head.queryValue("since") == "5")
        #expect(head.queryValue("Name") == nil)
        #expect(head.queryValue("missing") == nil)
    }

    @Test(arguments: [
        ("a+b", "a b"), ("a%20b", "a b"), ("a%2Bb", "a+b"), ("%e2%82%ac", "\u{20AC}"), ("%E2%82%AC", "\u{20AC}"),
        ("%zz", "%zz"), ("%4", "%4"), ("100%", "100%"), ("%", "%"), ("%%41", "%A"), ("a%2", "a%2"),
        ("%41%42", "AB"), ("%2B+%2b", "+ +"), ("x=y", "x=y"), ("", ""), ("%F0%9F%8E%89", "\u{1F389}"),
    ])
    func queryValueDecoding(encoded: String, decoded: String) throws {
        let head = try #require(Self.head(target: "/?k=\(encoded)"))
        #expect(head.queryValue("k") == decoded)
    }

    @Test func queryItemShapes() throws {
        let head = try #require(Self.head(target: "/x?&&flag&a=1&&a=2&=empty&na%6De=bob&"))
        #expect(Self.pairs(head) == [["flag", ""], ["a", "1"], ["a", "2"], ["", "empty"], ["name", "bob"]])
        #expect(head.queryValue("a") == "1")
        #expect(head.queryValue("flag") == "")
        #expect(head.queryValue("name") == "bob")
        #expect(try #require(Self.head(target: "/x")).queryItems.isEmpty)
        #expect(try #require(Self.head(target: "/x?")).queryItems.isEmpty)
        #expect(try #require(Self.head(target: "/x?")).query == "")
        #expect(try #require(Self.head(target: "/x")).query == nil)
    }

    @Test func queryIsSplitAtTheFirstQuestionMark() throws {
        let head = try #require(Self.head(target: "/rooms/r?a=b?c&d=/e"))
        #expect(head.path == "/rooms/r")
        #expect(head.query == "a=b?c&d=/e")
        #expect(head.queryValue("a") == "b?c")
        #expect(head.queryValue("d") == "/e")
        #expect(head.room == RoomID("r"))
    }

    // MARK: headers

    @Test func headerLookupIsCaseInsensitiveAndReturnsTheFirst() throws {
        let head = try #require(Self.head(target: "/", ["hOsT: h", "X-Dup: one", "x-dup: two", "SEC-WEBSOCKET-KEY: k"]))
        #expect(head.header("Host") == "h")
        #expect(head.header("HOST") == "h")
        #expect(head.header("x-DUP") == "one")
        #expect(head.header("Sec-WebSocket-Key") == "k")
        #expect(head.header("X-Missing") == nil)
        #expect(head.header("X-Du") == nil)
    }

    @Test func headerContainsToken() throws {
        let head = try #require(Self.head(target: "/", [
            "Host: h", "Connection: keep-alive, Upgrade", "Accept-Encoding: gzip,deflate ,\tbr", "X-Multi: a",
            "x-multi: B, c", "X-Sub: Upgraded, keep-alive-ish", "X-Empty: ,, ,\t,", "X-Sparse: ,,  z ,,",
        ]))
        #expect(head.headerContainsToken("connection", "upgrade"))
        #expect(head.headerContainsToken("Connection", "KEEP-ALIVE"))
        #expect(!head.headerContainsToken("Connection", "close"))
        #expect(head.headerContainsToken("accept-encoding", "deflate"))
        #expect(head.headerContainsToken("accept-encoding", "br"))
        #expect(head.headerContainsToken("accept-encoding", "gzip"))
        #expect(head.headerContainsToken("x-multi", "a"))
        #expect(head.headerContainsToken("X-MULTI", "b"))
        #expect(head.headerContainsToken("x-multi", "c"))
        #expect(!head.headerContainsToken("x-sub", "upgrade"))
        #expect(!head.headerContainsToken("x-sub", "keep-alive"))
        #expect(!head.headerContainsToken("x-missing", "a"))
        #expect(!head.headerContainsToken("connection", "keep-alive, upgrade"))
        #expect(!head.headerContainsToken("x-empty", ","))
        #expect(!head.headerContainsToken("x-empty", " "))
        #expect(head.headerContainsToken("x-sparse", "Z"))
        #expect(!head.headerContainsToken("x-sparse", ""))
    }

    @Test(arguments: [
        (["Connection: Upgrade", "Upgrade: websocket"], true),
        (["Connection: keep-alive, Upgrade", "Upgrade: WebSocket"], true),
        (["connection: upgrade", "upgrade: WEBSOCKET"], true),
        (["Connection: keep-alive", "Connection: upgrade", "Upgrade: websocket"], true),
        (["Connection: keep-alive", "Upgrade: websocket"], false),
        (["Connection: Upgrade"], false),
        (["Upgrade: websocket"], false),
        (["Connection: Upgrade", "Upgrade: h2c"], false),
        (["Connection: Upgrade", "Upgrade: websocket2"], false),
        (["Connection: Upgraded", "Upgrade: websocket"], false),
    ])
    func isWebSocketUpgrade(headers: [String], expected: Bool) throws {
        let head = try #require(Self.head(target: "/rooms/a", ["Host: h"] + headers))
        #expect(head.isWebSocketUpgrade == expected)
    }

    @Test("serialized(adding:) round-trips through the parser", arguments: ValidHeadCase.all)
    func serializedRoundTrip(_ c: ValidHeadCase) throws {
        let extra = RequestHead.Header(name: "X-Forwarded-For", value: "10.0.0.7")
        let bytes = c.expected.serialized(adding: [extra])
        // The added header may push a head that was at the limits past them: re-parse with room for one more.
        let roomy = RequestHeadParser.Limits(maxHeadBytes: 8192 + 64, maxHeaders: 101)
        guard case .complete(let again) = P.whole(bytes, limits: roomy) else {
            Issue.record("serialized head does not parse: \(String(decoding: bytes, as: UTF8.self))"); return
        }
        #expect(again.headers == c.expected.headers + [extra])
        #expect(again.header("x-forwarded-for") == "10.0.0.7")
        #expect(again.length == bytes.count)
        var withoutLength = again
        withoutLength.headers.removeLast()
        withoutLength.length = c.expected.length
        #expect(withoutLength == c.expected)
        // Without additions the head parses back to itself.
        guard case .complete(let plain) = P.whole(c.expected.serialized()) else { Issue.record("no round trip"); return }
        #expect(plain.headers == c.expected.headers)
        #expect(plain.target == c.expected.target)
        #expect(plain.minorVersion == c.expected.minorVersion)
    }

    @Test func serializedIsCanonicalBytes() throws {
        let raw = P.head(["GET /rooms/lobby?since=3 HTTP/1.1", "Host: h", "Upgrade: websocket"])
        let head = try #require(Self.head(target: "/rooms/lobby?since=3", ["Host: h", "Upgrade: websocket"]))
        #expect(head.serialized() == raw)
        #expect(
            head.serialized(adding: [.init(name: "X-Forwarded-For", value: "1.2.3.4"), .init(name: "X-A", value: "b")])
                == P.head(["GET /rooms/lobby?since=3 HTTP/1.1", "Host: h", "Upgrade: websocket", "X-Forwarded-For: 1.2.3.4", "X-A: b"]))
        let http10 = try #require({ () -> RequestHead? in
            if case .complete(let h) = P.whole(P.head(["GET /healthz HTTP/1.0"])) { return h }
            return nil
        }())
        #expect(http10.serialized() == P.head(["GET /healthz HTTP/1.0"]))
    }
}

import Testing
@testable import RoomRingCore

/// One head the parser must refuse, with the exact reason and HTTP status.
struct RejectCase: Sendable, CustomTestStringConvertible {
    let name: String
    let raw: [UInt8]
    let reason: RequestHeadError.Reason
    let status: Int
    let limits: RequestHeadParser.Limits
    var testDescription: String { name }

    init(_ name: String, _ raw: [UInt8], _ reason: RequestHeadError.Reason, _ status: Int, limits: RequestHeadParser.Limits = .init()) {
        self.name = name
        self.raw = raw
        self.reason = reason
        self.status = status
        self.limits = limits
    }

    init(_ name: String, lines: [String], _ reason: RequestHeadError.Reason, _ status: Int, limits: RequestHeadParser.Limits = .init()) {
        self.init(name, ParserHarness.head(lines), reason, status, limits: limits)
    }

    init(_ name: String, text: String, _ reason: RequestHeadError.Reason, _ status: Int, limits: RequestHeadParser.Limits = .init()) {
        self.init(name, ParserHarness.bytes(text), reason, status, limits: limits)
    }

    static let small = RequestHeadParser.Limits(maxHeadBytes: 256, maxHeaders: 8)

    /// Deterministic "random" bytes whose first byte is not printable ASCII.
    static func noise(seed: UInt64, count: Int) -> [UInt8] {
        var state = seed
        var out: [UInt8] = []
        for _ in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            out.append(UInt8(truncatingIfNeeded: state >> 56))
        }
        out[0] = 0x80 | out[0]
        return out
    }

    static let tlsClientHello: [UInt8] = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03, 0x5A, 0x1B, 0x20, 0x0D, 0x0A, 0x0D, 0x0A,
        0x47, 0x45, 0x54, 0x20, 0x2F, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2F, 0x31, 0x2E, 0x31, 0x0D, 0x0A, 0x0D, 0x0A,
    ]

    static let all: [RejectCase] = size + methods + notHTTP + versions + targets + rooms + framing + fields + semantics

    static let size: [RejectCase] = [
        .init("oversize, with a terminating blank line", lines: ["GET / HTTP/1.1", "Host: x", "X-Pad: " + String(repeating: "a", count: 300)], .tooLarge, 431, limits: small),
        .init("oversize by one byte", lines: ["GET / HTTP/1.1", "Host: x", "X-Pad: " + String(repeating: "a", count: 256 - 35)], .tooLarge, 431, limits: small),
        .init("oversize, no terminating blank line", text: "GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Fill: 0123456789\r\n", count: 40), .tooLarge, 431, limits: small),
        .init("endless header line", text: "GET / HTTP/1.1\r\nX-Endless: " + String(repeating: "a", count: 1000), .tooLarge, 431, limits: small),
        .init("endless request line", text: "GET /" + String(repeating: "a", count: 1000), .tooLarge, 431, limits: small),
        .init("many small headers and no end", text: "GET / HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: 100), .tooLarge, 431, limits: small),
        .init("oversize with default limits", lines: ["GET / HTTP/1.1", "Host: x", "X-Pad: " + String(repeating: "a", count: 8200)], .tooLarge, 431),
        .init("too many headers", lines: ["GET / HTTP/1.1", "Host: x"] + (1...8).map { "X-\($0): v" }, .tooManyHeaders, 431, limits: small),
        .init("101 headers with default limits", lines: ["GET / HTTP/1.1", "Host: x"] + (1...100).map { "X-Header-\($0): value-\($0)" }, .tooManyHeaders, 431),
    ]

    static let methods: [RejectCase] = [
        .init("lowercase method", lines: ["get / HTTP/1.1", "Host: x"], .badMethod, 400),
        .init("mixed-case method", lines: ["Get / HTTP/1.1", "Host: x"], .badMethod, 400),
        .init("digit in method", lines: ["G3T / HTTP/1.1", "Host: x"], .badMethod, 400),
        .init("digits as method", lines: ["123 / HTTP/1.1", "Host: x"], .badMethod, 400),
        .init("dash in method", lines: ["M-SEARCH / HTTP/1.1", "Host: x"], .badMethod, 400),
        .init("17-letter method", lines: ["ABCDEFGHIJKLMNOPQ / HTTP/1.1", "Host: x"], .badMethod, 400),
        .init("very long method", lines: [String(repeating: "GET", count: 50) + " / HTTP/1.1", "Host: x"], .badMethod, 400),
        .init("empty method", lines: [" / HTTP/1.1", "Host: x"], .badMethod, 400),
        .init("tab after method", lines: ["GET\t/ HTTP/1.1", "Host: x"], .badMethod, 400),
        .init("leading empty line", text: "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", .badMethod, 400),
        .init("leading bare LF", text: "\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", .badMethod, 400),
        .init("request line is only a method", lines: ["GET", "Host: x"], .badVersion, 505),
        .init("16-letter method then CR LF", text: "ABCDEFGHIJKLMNOP\r\n\r\n", .badVersion, 505),
    ]

    static let notHTTP: [RejectCase] = [
        .init("TLS ClientHello", tlsClientHello, .notHTTP, 400),
        .init("random binary (seed 1)", noise(seed: 1, count: 300), .notHTTP, 400),
        .init("random binary (seed 2)", noise(seed: 2, count: 64), .notHTTP, 400),
        .init("random binary (seed 3)", noise(seed: 3, count: 9000), .notHTTP, 400),
        .init("NUL first", [0x00] + ParserHarness.head(["GET / HTTP/1.1", "Host: x"]), .notHTTP, 400),
        .init("SOCKS5 greeting", [0x05, 0x01, 0x00], .notHTTP, 400),
        .init("control character first", [0x1B] + ParserHarness.bytes("GET / HTTP/1.1\r\n\r\n"), .notHTTP, 400),
        .init("UTF-8 first", ParserHarness.bytes("\u{C9}GET / HTTP/1.1\r\n\r\n"), .notHTTP, 400),
    ]

    static let versions: [RejectCase] = [
        .init("HTTP/2.0", lines: ["GET / HTTP/2.0", "Host: x"], .badVersion, 505),
        .init("HTTP/1.2", lines: ["GET / HTTP/1.2", "Host: x"], .badVersion, 505),
        .init("HTTP/0.9", lines: ["GET / HTTP/0.9"], .badVersion, 505),
        .init("lowercase http", lines: ["GET / http/1.1", "Host: x"], .badVersion, 505),
        .init("garbage version", lines: ["GET / FOO/1.1", "Host: x"], .badVersion, 505),
        .init("version with suffix", lines: ["GET / HTTP/1.10", "Host: x"], .badVersion, 505),
        .init("version with spaces inside", lines: ["GET / HTTP/ 1.1", "Host: x"], .badTarget, 400),
        .init("missing version", lines: ["GET /", "Host: x"], .badVersion, 505),
        .init("empty version", lines: ["GET / ", "Host: x"], .badVersion, 505),
        .init("HTTP/2 connection preface", text: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .badVersion, 505),
    ]

    static let targets: [RejectCase] = [
        .init("absolute-form", lines: ["GET http://example.com/rooms/a HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("asterisk-form", lines: ["OPTIONS * HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("authority-form", lines: ["CONNECT example.com:443 HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("space in target", lines: ["GET /a b HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("space in room", lines: ["GET /rooms/a b HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("two spaces after method", lines: ["GET  / HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("empty target", lines: ["GET  HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("trailing space after version", lines: ["GET / HTTP/1.1 ", "Host: x"], .badTarget, 400),
        .init("non-ASCII target", lines: ["GET /caf\u{E9} HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("non-ASCII room", lines: ["GET /rooms/\u{1F389} HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("control char in target", lines: ["GET /a\u{01}b HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("DEL in target", lines: ["GET /a\u{7F} HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("tab in target", lines: ["GET /a\tb HTTP/1.1", "Host: x"], .badTarget, 400),
        .init("relative target", lines: ["GET rooms/a HTTP/1.1", "Host: x"], .badTarget, 400),
    ]

    static let rooms: [RejectCase] = [
        .init("/rooms/", lines: ["GET /rooms/ HTTP/1.1", "Host: x"], .missingRoom, 400),
        .init("/rooms//x", lines: ["GET /rooms//x HTTP/1.1", "Host: x"], .missingRoom, 400),
        .init("/rooms/?since=1", lines: ["GET /rooms/?since=1 HTTP/1.1", "Host: x"], .missingRoom, 400),
        .init("escaped slash in room", lines: ["GET /rooms/a%2Fb HTTP/1.1", "Host: x"], .invalidRoom, 400),
        .init("malformed escape in room", lines: ["GET /rooms/%zz HTTP/1.1", "Host: x"], .invalidRoom, 400),
        .init("truncated escape in room", lines: ["GET /rooms/ab%4 HTTP/1.1", "Host: x"], .invalidRoom, 400),
        .init("escaped space in room", lines: ["GET /rooms/a%20b HTTP/1.1", "Host: x"], .invalidRoom, 400),
        .init("129-character room", lines: ["GET /rooms/\(String(repeating: "r", count: 129)) HTTP/1.1", "Host: x"], .invalidRoom, 400),
        .init("reserved character in room", lines: ["GET /rooms/a:b?x HTTP/1.1", "Host: x"], .invalidRoom, 400),
        .init("escaped non-ASCII room", lines: ["GET /rooms/%C3%A9/events HTTP/1.1", "Host: x"], .invalidRoom, 400),
        .init("room on HTTP/1.0", lines: ["POST /rooms/a+b/messages HTTP/1.0"], .invalidRoom, 400),
    ]

    static let framing: [RejectCase] = [
        .init("obsolete line folding (space)", lines: ["GET / HTTP/1.1", "Host: x", "X-A: a", " b"], .obsoleteLineFolding, 400),
        .init("obsolete line folding (tab)", lines: ["GET / HTTP/1.1", "Host: x", "X-A: a", "\tb"], .obsoleteLineFolding, 400),
        .init("whitespace before the first header", lines: ["GET / HTTP/1.1", " Host: x"], .obsoleteLineFolding, 400),
        .init("NUL in method", text: "GE\u{0}T / HTTP/1.1\r\nHost: x\r\n\r\n", .nulByte, 400),
        .init("NUL in target", text: "GET /a\u{0}b HTTP/1.1\r\nHost: x\r\n\r\n", .nulByte, 400),
        .init("NUL in header name", text: "GET / HTTP/1.1\r\nHo\u{0}st: x\r\n\r\n", .nulByte, 400),
        .init("NUL in header value", text: "GET / HTTP/1.1\r\nHost: x\u{0}y\r\n\r\n", .nulByte, 400),
        .init("bad method letter before a NUL", text: "GEt\u{0} / HTTP/1.1\r\n\r\n", .badMethod, 400),
        .init("bare LF ends the request line", text: "GET / HTTP/1.1\nHost: x\r\n\r\n", .bareLF, 400),
        .init("bare LF ends a header", text: "GET / HTTP/1.1\r\nHost: x\n\r\n", .bareLF, 400),
        .init("bare LF as the final blank line", text: "GET / HTTP/1.1\r\nHost: x\r\n\n", .bareLF, 400),
        .init("only bare LFs", text: "GET / HTTP/1.1\nHost: x\n\n", .bareLF, 400),
        .init("bare LF inside the method", text: "GE\nT / HTTP/1.1\r\n\r\n", .bareLF, 400),
        .init("bare CR in the request line", text: "GET / HTTP/1.1\rHost: x\r\n\r\n", .bareLF, 400),
        .init("bare CR in a header value", text: "GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n", .bareLF, 400),
        .init("CR CR LF", text: "GET / HTTP/1.1\r\nHost: x\r\r\n\r\n", .bareLF, 400),
        .init("bare CR inside the method", text: "GE\rT / HTTP/1.1\r\n\r\n", .bareLF, 400),
    ]

    static let fields: [RejectCase] = [
        .init("space before colon", lines: ["GET / HTTP/1.1", "Host : x"], .badHeaderName, 400),
        .init("empty header name", lines: ["GET / HTTP/1.1", "Host: x", ": value"], .badHeaderName, 400),
        .init("no colon", lines: ["GET / HTTP/1.1", "Host: x", "NoColonHere"], .badHeaderName, 400),
        .init("separator in name", lines: ["GET / HTTP/1.1", "Host: x", "X(A): v"], .badHeaderName, 400),
        .init("non-ASCII name", lines: ["GET / HTTP/1.1", "Host: x", "X-\u{E9}: v"], .badHeaderName, 400),
        .init("control char in value", lines: ["GET / HTTP/1.1", "Host: x", "X-A: a\u{01}b"], .badHeaderValue, 400),
        .init("ESC in value", lines: ["GET / HTTP/1.1", "Host: x", "X-A: \u{1B}[31m"], .badHeaderValue, 400),
        .init("DEL in value", lines: ["GET / HTTP/1.1", "Host: x", "X-A: a\u{7F}"], .badHeaderValue, 400),
        .init("vertical tab in value", lines: ["GET / HTTP/1.1", "Host: x", "X-A: a\u{0B}b"], .badHeaderValue, 400),
        .init("first bad field wins", lines: ["GET / HTTP/1.1", "X-A: \u{01}", "Bad Name: v"], .badHeaderValue, 400),
    ]

    static let semantics: [RejectCase] = [
        .init("HTTP/1.1 without Host", lines: ["GET /rooms/lobby HTTP/1.1", "Upgrade: websocket"], .missingHost, 400),
        .init("HTTP/1.1 with no headers", lines: ["GET / HTTP/1.1"], .missingHost, 400),
        .init("Content-Length and Transfer-Encoding", lines: ["POST /rooms/x/messages HTTP/1.1", "Host: x", "Content-Length: 5", "Transfer-Encoding: chunked"], .conflictingLength, 400),
        .init("Transfer-Encoding and Content-Length", lines: ["POST /rooms/x/messages HTTP/1.1", "Host: x", "transfer-encoding: chunked", "content-length: 5"], .conflictingLength, 400),
        .init("two differing Content-Lengths", lines: ["POST / HTTP/1.1", "Host: x", "Content-Length: 5", "Content-Length: 6"], .conflictingLength, 400),
        .init("Content-Length abc", lines: ["POST / HTTP/1.1", "Host: x", "Content-Length: abc"], .badContentLength, 400),
        .init("Content-Length -1", lines: ["POST / HTTP/1.1", "Host: x", "Content-Length: -1"], .badContentLength, 400),
        .init("Content-Length +1", lines: ["POST / HTTP/1.1", "Host: x", "Content-Length: +1"], .badContentLength, 400),
        .init("Content-Length 1.5", lines: ["POST / HTTP/1.1", "Host: x", "Content-Length: 1.5"], .badContentLength, 400),
        .init("Content-Length list", lines: ["POST / HTTP/1.1", "Host: x", "Content-Length: 5, 5"], .badContentLength, 400),
        .init("Content-Length hex", lines: ["POST / HTTP/1.1", "Host: x", "Content-Length: 0x10"], .badContentLength, 400),
        .init("Content-Length empty", lines: ["POST / HTTP/1.1", "Host: x", "Content-Length:"], .badContentLength, 400),
        .init("Content-Length 19 digits", lines: ["POST / HTTP/1.1", "Host: x", "Content-Length: 1000000000000000000"], .badContentLength, 400),
        .init("Content-Length non-ASCII digit", lines: ["POST / HTTP/1.1", "Host: x", "Content-Length: \u{0661}"], .badContentLength, 400),
    ]
}

@Suite("RequestHeadParser: rejections")
struct RequestHeadParserRejectionTests {
    typealias P = ParserHarness

    @Test("whole head: exact reason and status", arguments: RejectCase.all)
    func whole(_ c: RejectCase) {
        let result = P.whole(c.raw, limits: c.limits)
        #expect(result == .rejected(.init(c.reason)))
        guard case .rejected(let error) = result else { return }
        #expect(error.reason == c.reason)
        #expect(error.status == c.status)
        #expect(error.closeWithoutResponse == (c.reason == .notHTTP))
    }

    @Test("split at every offset: same rejection", arguments: RejectCase.all)
    func everySplit(_ c: RejectCase) {
        // Very long inputs are checked at a stride plus the interesting ends, to keep the suite fast.
        let offsets: [Int]? = c.raw.count > 3000
            ? Array(Set(Array(stride(from: 0, through: c.raw.count, by: 61)) + Array(0...40) + Array((c.raw.count - 40)...c.raw.count)
                + Array(max(0, c.limits.maxHeadBytes - 20)...min(c.raw.count, c.limits.maxHeadBytes + 20)))).sorted()
            : nil
        #expect(P.splitMismatches(c.raw, expected: .rejected(.init(c.reason)), limits: c.limits, offsets: offsets) == [])
    }

    @Test("byte by byte: same rejection", arguments: RejectCase.all)
    func byteByByte(_ c: RejectCase) {
        let (result, stable) = P.byteByByte(c.raw, limits: c.limits)
        #expect(result == .rejected(.init(c.reason)))
        #expect(stable)
    }

    @Test("status and closeWithoutResponse for every reason", arguments: RequestHeadError.Reason.allCases)
    func statusTable(_ reason: RequestHeadError.Reason) {
        let error = RequestHeadError(reason)
        let expected = switch reason {
        case .tooLarge, .tooManyHeaders: 431
        case .badVersion: 505
        case .notHTTP, .badMethod, .badTarget, .bareLF, .nulByte, .obsoleteLineFolding, .badHeaderName,
            .badHeaderValue, .missingHost, .conflictingLength, .badContentLength, .missingRoom, .invalidRoom: 400
        }
        #expect(error.status == expected)
        #expect(error.closeWithoutResponse == (reason == .notHTTP))
        #expect(!error.description.isEmpty)
        #expect(!reason.rawValue.isEmpty)
    }

    @Test func everyReasonIsCoveredByACase() {
        let covered = Set(RejectCase.all.map(\.reason))
        #expect(covered == Set(RequestHeadError.Reason.allCases))
    }

    // MARK: early rejection

    @Test func nonHTTPFirstByteIsRejectedAfterOneByte() {
        for first: UInt8 in [0x16, 0x00, 0x80, 0xFF, 0x05, 0x1B, 0x7F, 0x09, 0x1F] {
            var parser = RequestHeadParser()
            let result = parser.feed([first])
            #expect(result == .rejected(.init(.notHTTP)), "first byte \(first)")
            if case .rejected(let error) = result { #expect(error.closeWithoutResponse) }
        }
    }

    @Test func textualGarbageGetsAnAnswer() {
        for first in "get 1/ #-~".utf8 {
            var parser = RequestHeadParser()
            let result = parser.feed([first])
            #expect(result == .rejected(.init(.badMethod)), "first byte \(first)")
            if case .rejected(let error) = result { #expect(!error.closeWithoutResponse) }
        }
    }

    @Test func longMethodIsRejectedBeforeAnyLineEnd() {
        var parser = RequestHeadParser()
        for (i, byte) in "ABCDEFGHIJKLMNOP".utf8.enumerated() {
            #expect(parser.feed([byte]) == .needMore, "letter \(i + 1)")
        }
        #expect(parser.feed(P.bytes("Q")) == .rejected(.init(.badMethod)))
        var whole = RequestHeadParser()
        #expect(whole.feed(P.bytes("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) == .rejected(.init(.badMethod)))
        var sixteen = RequestHeadParser()
        #expect(sixteen.feed(P.bytes("ABCDEFGHIJKLMNOP ")) == .needMore)
    }

    @Test func badMethodCharacterIsRejectedBeforeAnyLineEnd() {
        var parser = RequestHeadParser()
        #expect(parser.feed(P.bytes("GE")) == .needMore)
        #expect(parser.feed(P.bytes("t")) == .rejected(.init(.badMethod)))
    }

    @Test func requestLineIsJudgedWhenItEnds() {
        var parser = RequestHeadParser()
        #expect(parser.feed(P.bytes("GET / HTTP/1.1")) == .needMore)
        #expect(parser.feed(P.bytes("\r\n")) == .needMore)
        var bad = RequestHeadParser()
        #expect(bad.feed(P.bytes("GET / HTTP/2.0")) == .needMore)
        #expect(bad.feed(P.bytes("\r\n")) == .rejected(.init(.badVersion)))
        var target = RequestHeadParser()
        #expect(target.feed(P.bytes("GET http://a/ HTTP/1.1\r\n")) == .rejected(.init(.badTarget)))
    }

    @Test func framingErrorsAreRejectedImmediately() {
        var nul = RequestHeadParser()
        #expect(nul.feed(P.bytes("GET /a\u{0}")) == .rejected(.init(.nulByte)))
        var lf = RequestHeadParser()
        #expect(lf.feed(P.bytes("GET / HTTP/1.1\n")) == .rejected(.init(.bareLF)))
        var cr = RequestHeadParser()
        #expect(cr.feed(P.bytes("GET / HTTP/1.1\r")) == .needMore)
        #expect(cr.feed(P.bytes("x")) == .rejected(.init(.bareLF)))
    }

    @Test func sizeLimitIsEnforcedAtTheFirstByteTooMany() {
        let limits = RequestHeadParser.Limits(maxHeadBytes: 64, maxHeaders: 8)
        var parser = RequestHeadParser(limits: limits)
        let line = P.bytes("GET / HTTP/1.1\r\nX: ") + Array(repeating: UInt8(ascii: "a"), count: 64)
        #expect(parser.feed(line[..<64]) == .needMore)
        #expect(parser.feed(line[64..<65]) == .rejected(.init(.tooLarge)))
        // A huge chunk is refused in one go.
        var big = RequestHeadParser()
        #expect(big.feed(P.bytes("GET / HTTP/1.1\r\nX: ") + Array(repeating: UInt8(ascii: "a"), count: 100_000)) == .rejected(.init(.tooLarge)))
    }

    @Test func afterARejectionFurtherFeedsReturnTheSameRejection() {
        var parser = RequestHeadParser()
        let first = parser.feed(P.bytes("GET / HTTP/9.9\r\n"))
        #expect(first == .rejected(.init(.badVersion)))
        let buffered = parser.bufferedBytes
        #expect(parser.feed(P.bytes("Host: x\r\n\r\n")) == first)
        #expect(parser.feed([UInt8]()) == first)
        #expect(parser.bufferedBytes == buffered)
    }
}

@Suite("RoomPath")
struct RoomPathTests {
    @Test(arguments: ["/", "/healthz", "/rooms", "/roomsx/a", "/Rooms/a", "//rooms/a", "/x/rooms/a", "", "rooms/a"])
    func noRoom(path: String) {
        #expect(RoomPath.parse(path) == .noRoom)
    }

    @Test(arguments: [
        ("/rooms/a", "a", ""), ("/rooms/a/", "a", "/"), ("/rooms/lobby/messages", "lobby", "/messages"),
        ("/rooms/r1/events", "r1", "/events"), ("/rooms/a/b/c", "a", "/b/c"), ("/rooms/%41bc", "Abc", ""),
        ("/rooms/%61%62", "ab", ""), ("/rooms/a%2e%2E/x", "a..", "/x"), ("/rooms/x//y", "x", "//y"),
        ("/rooms/A-Z.a_z~0-9", "A-Z.a_z~0-9", ""), ("/rooms/r/%zz", "r", "/%zz"),
    ])
    func room(path: String, room: String, rest: String) {
        #expect(RoomPath.parse(path) == .room(RoomID(room)!, rest: rest))
    }

    @Test(arguments: ["/rooms/", "/rooms//", "/rooms//x"])
    func missingRoom(path: String) {
        #expect(RoomPath.parse(path) == .invalid(.missingRoom))
    }

    @Test(arguments: [
        "/rooms/a%2Fb", "/rooms/a%2fb", "/rooms/%zz", "/rooms/%", "/rooms/a%4", "/rooms/a%20b", "/rooms/a:b",
        "/rooms/%C3%A9", "/rooms/caf\u{E9}", "/rooms/a+b", "/rooms/%00", "/rooms/a%2F", "/rooms/" + String(repeating: "r", count: 129),
    ])
    func invalidRoom(path: String) {
        #expect(RoomPath.parse(path) == .invalid(.invalidRoom))
    }

    @Test func lengthLimitAppliesAfterDecoding() {
        let plain128 = String(repeating: "b", count: 128)
        #expect(RoomPath.parse("/rooms/" + plain128) == .room(RoomID(plain128)!, rest: ""))
        // 128 characters spelled with escapes: 384 bytes on the wire, 128 after decoding.
        let encoded = String(repeating: "%41", count: 128)
        #expect(RoomPath.parse("/rooms/" + encoded) == .room(RoomID(String(repeating: "A", count: 128))!, rest: ""))
        #expect(RoomPath.parse("/rooms/" + encoded + "%41") == .invalid(.invalidRoom))
    }
}

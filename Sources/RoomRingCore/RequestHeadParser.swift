/// An incremental, bounded HTTP/1.x request-head parser for the proxy and the shard.
///
/// Feed it byte chunks as they arrive; it answers `.needMore` until the empty line that ends the head, then
/// `.complete` once, or `.rejected` as soon as the bytes seen so far cannot become a valid head. Hostile input
/// (no end, bare LF, NUL, folding) is rejected early instead of buffered up to the limit.
public struct RequestHeadParser: Sendable {
    /// Limits that bound memory and work per connection.
    public struct Limits: Hashable, Sendable {
        /// Largest head accepted, in bytes (default 8 KiB).
        public var maxHeadBytes: Int
        /// Most header fields accepted (default 100).
        public var maxHeaders: Int

        /// - Parameters:
        ///   - maxHeadBytes: largest head in bytes, default 8192.
        ///   - maxHeaders: most header fields, default 100.
        public init(maxHeadBytes: Int = 8192, maxHeaders: Int = 100) {
            self.maxHeadBytes = maxHeadBytes
            self.maxHeaders = maxHeaders
        }
    }

    /// The outcome of feeding bytes.
    public enum Result: Hashable, Sendable {
        /// The head is not complete yet.
        case needMore
        /// The head is complete; bytes after `head.length` in the stream belong to the body or the next protocol.
        case complete(RequestHead)
        /// The head can never become valid.
        case rejected(RequestHeadError)
    }

    /// The outcome of ``scan(_:)``: the same verdicts as ``feed(_:)``, with only what the proxy routes and
    /// forwards by instead of the whole head as strings.
    public enum ScanResult: Hashable, Sendable {
        case needMore
        case complete(RequestHeadFacts)
        case rejected(RequestHeadError)
    }

    /// The limits in force.
    public let limits: Limits
    private var buffer: [UInt8] = []
    private var previous: UInt8 = 0
    private var requestLineSeen = false
    private var methodEnded = false
    private var finished: Swift.Result<Layout, RequestHeadError>?

    /// - Parameters:
    ///   - limits: size limits, default ``Limits/init(maxHeadBytes:maxHeaders:)``.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Bytes buffered so far (the head, plus anything after it in the last chunk).
    public var bufferedBytes: [UInt8] { buffer }

    /// Feeds the next chunk. After a final result, further calls return that result again.
    public mutating func feed(_ chunk: some Collection<UInt8>) -> Result {
        switch advance(chunk) {
        case nil: .needMore
        case .failure(let error): .rejected(error)
        case .success(let layout): .complete(head(layout))
        }
    }

    /// Feeds the next chunk like ``feed(_:)`` (same checks, same verdicts), but a complete head yields its
    /// ``RequestHeadFacts`` without building a string per header: the proxy's path for every connection.
    public mutating func scan(_ chunk: some Collection<UInt8>) -> ScanResult {
        switch advance(chunk) {
        case nil: .needMore
        case .failure(let error): .rejected(error)
        case .success(let layout): .complete(facts(layout))
        }
    }

    /// Consumes `chunk`; nil until the head is complete or rejected.
    private mutating func advance(_ chunk: some Collection<UInt8>) -> Swift.Result<Layout, RequestHeadError>? {
        // The request line is judged as soon as its end arrives, and a method that is already too long or not
        // letters fails before any line end: hostile input is refused early, not buffered up to the limit.
        // Every check looks only at the bytes up to the current one, in order, so the verdict does not depend on
        // how the stream was cut into chunks.
        if let finished { return finished }
        let start = buffer.count
        buffer.append(contentsOf: chunk)
        if start == 0, let first = buffer.first, !Self.isUpperAlpha(first) {
            // Text (printable ASCII or a line end) is a malformed request and gets a 400; anything else is not HTTP.
            let text = first == UInt8(ascii: "\r") || first == UInt8(ascii: "\n") || (0x20...0x7E).contains(first)
            return finish(.failure(.init(text ? .badMethod : .notHTTP)))
        }
        var index = start
        while index < buffer.count {
            // Every byte examined here belongs to the head (the loop stops at its end), so one past the limit fails.
            guard index < limits.maxHeadBytes else { return finish(.failure(.init(.tooLarge))) }
            let byte = buffer[index]
            if byte == 0 { return finish(.failure(.init(.nulByte))) }
            if byte == UInt8(ascii: "\n") {
                guard previous == UInt8(ascii: "\r") else { return finish(.failure(.init(.bareLF))) }
                if index >= 3, buffer[index - 2] == UInt8(ascii: "\n") {
                    return finish(layout(headLength: index + 1))
                }
                if !requestLineSeen {
                    requestLineSeen = true
                    if case .failure(let error) = Self.requestLine(buffer[0..<(index - 1)]) {
                        return finish(.failure(error))
                    }
                }
            } else if previous == UInt8(ascii: "\r") {
                return finish(.failure(.init(.bareLF)))  // a CR must be followed by LF
            } else if !requestLineSeen, !methodEnded, byte != UInt8(ascii: "\r") {
                // Before any line end: a method that is too long or not letters fails now, not at 8 KiB.
                if byte == UInt8(ascii: " ") {
                    methodEnded = true
                } else if !Self.isUpperAlpha(byte) || index >= 16 {
                    return finish(.failure(.init(.badMethod)))
                }
            }
            previous = byte
            index += 1
        }
        return nil
    }

    private mutating func finish(_ result: Swift.Result<Layout, RequestHeadError>) -> Swift.Result<Layout, RequestHeadError> {
        finished = result
        return result
    }

    /// Where the parts of a complete, valid head lie in `buffer`.
    struct Layout: Sendable {
        var length: Int
        var line: RequestLine
        var fields: [Field]
        var room: RoomPath
    }

    /// One header field: the name, and the value without surrounding spaces and tabs.
    struct Field: Sendable {
        var name: Range<Int>
        var value: Range<Int>
    }

    /// The request line's parts, as ranges of `buffer`.
    struct RequestLine: Sendable {
        var method: Range<Int>
        var target: Range<Int>
        /// The path: the target up to `?`.
        var path: Range<Int>
        /// After `?`, when there is one.
        var query: Range<Int>?
        var minor: Int
    }

    /// Validates the complete head and finds its parts, without copying anything. `advance` already refused bare
    /// LFs, NULs and a bad request line, so every line here ends in CRLF.
    private func layout(headLength: Int) -> Swift.Result<Layout, RequestHeadError> {
        let contentEnd = headLength - 2  // the final empty line
        guard let firstCR = buffer[0..<contentEnd].firstIndex(of: UInt8(ascii: "\r")) else {
            return .failure(.init(.badMethod))
        }
        let line: RequestLine
        switch Self.requestLine(buffer[0..<firstCR]) {
        case .success(let parsed): line = parsed
        case .failure(let error): return .failure(error)
        }
        var fields: [Field] = []
        fields.reserveCapacity(16)
        var hasHost = false
        var hasTransferEncoding = false
        // Content-Length is judged after every field was checked, as a whole: any invalid value, then any two
        // that differ, or one beside Transfer-Encoding.
        var badLength = false
        var firstLength: Range<Int>?
        var lengthsDiffer = false
        var lineStart = firstCR + 2
        while lineStart < contentEnd {
            let lineEnd = buffer[lineStart..<contentEnd].firstIndex(of: UInt8(ascii: "\r")) ?? contentEnd
            let fieldLine = buffer[lineStart..<lineEnd]
            lineStart = lineEnd + 2
            guard let first = fieldLine.first else { continue }
            if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { return .failure(.init(.obsoleteLineFolding)) }
            guard let colon = fieldLine.firstIndex(of: UInt8(ascii: ":")), colon > fieldLine.startIndex,
                fieldLine[fieldLine.startIndex..<colon].allSatisfy(Self.isTokenChar)
            else { return .failure(.init(.badHeaderName)) }
            var valueStart = colon + 1
            var valueEnd = fieldLine.endIndex
            guard buffer[valueStart..<valueEnd].allSatisfy({ $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7F) })
            else { return .failure(.init(.badHeaderValue)) }
            while valueStart < valueEnd, Self.isSpace(buffer[valueStart]) { valueStart += 1 }
            while valueEnd > valueStart, Self.isSpace(buffer[valueEnd - 1]) { valueEnd -= 1 }
            let field = Field(name: fieldLine.startIndex..<colon, value: valueStart..<valueEnd)
            if named(field, "host") {
                hasHost = true
            } else if named(field, "content-length") {
                let value = buffer[field.value]
                if value.isEmpty || value.count > 18 || !value.allSatisfy(Self.isDigit) {
                    badLength = true
                } else if let firstLength {
                    lengthsDiffer = lengthsDiffer || !buffer[firstLength].elementsEqual(value)
                } else {
                    firstLength = field.value
                }
            } else if named(field, "transfer-encoding") {
                hasTransferEncoding = true
            }
            fields.append(field)
            guard fields.count <= limits.maxHeaders else { return .failure(.init(.tooManyHeaders)) }
        }
        if line.minor == 1, !hasHost { return .failure(.init(.missingHost)) }
        if badLength { return .failure(.init(.badContentLength)) }
        if lengthsDiffer || (firstLength != nil && hasTransferEncoding) { return .failure(.init(.conflictingLength)) }
        let room = RoomPath.parse(path: buffer[line.path])
        if case .invalid(let reason) = room { return .failure(.init(reason)) }
        return .success(Layout(length: headLength, line: line, fields: fields, room: room))
    }

    /// The head as strings.
    private func head(_ layout: Layout) -> RequestHead {
        func text(_ range: Range<Int>) -> String { String(decoding: buffer[range], as: UTF8.self) }
        let line = layout.line
        var head = RequestHead(
            method: text(line.method), target: text(line.target), path: text(line.path), query: line.query.map(text),
            minorVersion: line.minor,
            headers: layout.fields.map { RequestHead.Header(name: text($0.name), value: text($0.value)) },
            room: nil, roomSubpath: "", length: layout.length)
        if case .room(let room, let rest) = layout.room {
            head.room = room
            head.roomSubpath = rest
        }
        return head
    }

    /// What the proxy needs, read off the layout; agrees with ``RequestHeadFacts/init(_:)`` on the full head.
    private func facts(_ layout: Layout) -> RequestHeadFacts {
        var connectionUpgrade = false
        var upgradeWebSocket = false
        var requestID: String?
        var contentLength: ArraySlice<UInt8>?
        var transferEncoding = false
        for field in layout.fields {
            let value = buffer[field.value]
            if named(field, "connection") {
                connectionUpgrade = connectionUpgrade || RequestHead.list(value, contains: Self.upgradeToken)
            } else if named(field, "upgrade") {
                upgradeWebSocket = upgradeWebSocket || RequestHead.list(value, contains: Self.websocketToken)
            } else if named(field, "x-request-id") {
                if requestID == nil { requestID = String(decoding: value, as: UTF8.self) }
            } else if named(field, "content-length") {
                if contentLength == nil { contentLength = value }
            } else if named(field, "transfer-encoding") {
                transferEncoding = true
            }
        }
        var room: RoomID?
        if case .room(let id, _) = layout.room { room = id }
        let hasBody = contentLength.map { !$0.elementsEqual(Self.zero) } ?? transferEncoding
        return RequestHeadFacts(length: layout.length, room: room, isWebSocketUpgrade: connectionUpgrade && upgradeWebSocket,
                                requestID: requestID, hasBody: hasBody)
    }

    private static let upgradeToken = Array("upgrade".utf8)
    private static let websocketToken = Array("websocket".utf8)
    private static let zero = Array("0".utf8)

    @inline(__always)
    private static func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    @inline(__always)
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// Whether a field's name is `lowercase`, ignoring ASCII case.
    private func named(_ field: Field, _ lowercase: StaticString) -> Bool {
        asciiCaseInsensitiveEqual(buffer[field.name],
                                  UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount))
    }

    /// Validates a request line (without its CRLF) and finds its parts.
    static func requestLine(_ line: ArraySlice<UInt8>) -> Swift.Result<RequestLine, RequestHeadError> {
        let space = UInt8(ascii: " ")
        let firstSpace = line.firstIndex(of: space) ?? line.endIndex
        let method = line.startIndex..<firstSpace
        guard !method.isEmpty, method.count <= 16, line[method].allSatisfy(isUpperAlpha) else {
            return .failure(.init(.badMethod))
        }
        guard firstSpace < line.endIndex, let secondSpace = line[(firstSpace + 1)...].firstIndex(of: space) else {
            return .failure(.init(.badVersion))
        }
        let target = (firstSpace + 1)..<secondSpace
        let version = line[(secondSpace + 1)...]
        if version.contains(space) { return .failure(.init(.badTarget)) }
        let minor: Int
        if version.elementsEqual(Self.http11) {
            minor = 1
        } else if version.elementsEqual(Self.http10) {
            minor = 0
        } else {
            return .failure(.init(.badVersion))
        }
        guard line[target].first == UInt8(ascii: "/"), line[target].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .failure(.init(.badTarget))
        }
        let question = line[target].firstIndex(of: UInt8(ascii: "?"))
        return .success(RequestLine(method: method, target: target, path: target.lowerBound..<(question ?? target.upperBound),
                                    query: question.map { ($0 + 1)..<target.upperBound }, minor: minor))
    }

    private static let http11 = Array("HTTP/1.1".utf8)
    private static let http10 = Array("HTTP/1.0".utf8)

    @inline(__always)
    static func isUpperAlpha(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") }

    static func isTokenChar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

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

    /// The limits in force.
    public let limits: Limits
    private var buffer: [UInt8] = []
    private var previous: UInt8 = 0
    private var requestLineSeen = false
    private var methodEnded = false
    private var finished: Result?

    /// - Parameters:
    ///   - limits: size limits, default ``Limits/init(maxHeadBytes:maxHeaders:)``.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Bytes buffered so far (the head, plus anything after it in the last chunk).
    public var bufferedBytes: [UInt8] { buffer }

    /// Feeds the next chunk. After a final result, further calls return that result again.
    public mutating func feed(_ chunk: some Collection<UInt8>) -> Result {
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
            return finish(.rejected(.init(text ? .badMethod : .notHTTP)))
        }
        var index = start
        while index < buffer.count {
            // Every byte examined here belongs to the head (the loop stops at its end), so one past the limit fails.
            guard index < limits.maxHeadBytes else { return finish(.rejected(.init(.tooLarge))) }
            let byte = buffer[index]
            if byte == 0 { return finish(.rejected(.init(.nulByte))) }
            if byte == UInt8(ascii: "\n") {
                guard previous == UInt8(ascii: "\r") else { return finish(.rejected(.init(.bareLF))) }
                if index >= 3, buffer[index - 2] == UInt8(ascii: "\n") {
                    return finish(parse(headLength: index + 1))
                }
                if !requestLineSeen {
                    requestLineSeen = true
                    if case .failure(let error) = Self.parseRequestLine(buffer[0..<(index - 1)]) {
                        return finish(.rejected(error))
                    }
                }
            } else if previous == UInt8(ascii: "\r") {
                return finish(.rejected(.init(.bareLF)))  // a CR must be followed by LF
            } else if !requestLineSeen, !methodEnded, byte != UInt8(ascii: "\r") {
                // Before any line end: a method that is too long or not letters fails now, not at 8 KiB.
                if byte == UInt8(ascii: " ") {
                    methodEnded = true
                } else if !Self.isUpperAlpha(byte) || index >= 16 {
                    return finish(.rejected(.init(.badMethod)))
                }
            }
            previous = byte
            index += 1
        }
        return .needMore
    }

    private mutating func finish(_ result: Result) -> Result {
        finished = result
        return result
    }

    private func parse(headLength: Int) -> Result {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = 0
        var i = 0
        while i < headLength - 2 {
            if buffer[i] == UInt8(ascii: "\r") {
                lines.append(buffer[lineStart..<i])
                lineStart = i + 2
                i += 2
            } else {
                i += 1
            }
        }
        guard let requestLine = lines.first else { return .rejected(.init(.badMethod)) }
        let parts: RequestLine
        switch Self.parseRequestLine(requestLine) {
        case .success(let p): parts = p
        case .failure(let e): return .rejected(e)
        }
        var headers: [RequestHead.Header] = []
        for line in lines.dropFirst() {
            guard let first = line.first else { continue }
            if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { return .rejected(.init(.obsoleteLineFolding)) }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                line[line.startIndex..<colon].allSatisfy(Self.isTokenChar)
            else { return .rejected(.init(.badHeaderName)) }
            let value = line[(colon + 1)...]
            guard value.allSatisfy({ $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7F) }) else {
                return .rejected(.init(.badHeaderValue))
            }
            headers.append(.init(name: String(decoding: line[line.startIndex..<colon], as: UTF8.self),
                                 value: String(String(decoding: value, as: UTF8.self)[...].trimmingSpaces())))
            guard headers.count <= limits.maxHeaders else { return .rejected(.init(.tooManyHeaders)) }
        }
        var head = RequestHead(method: parts.method, target: parts.target, path: parts.path, query: parts.query,
                               minorVersion: parts.minor, headers: headers, room: nil, roomSubpath: "",
                               length: headLength)
        if let error = Self.validateHeaders(head) { return .rejected(error) }
        switch RoomPath.parse(parts.path) {
        case .noRoom: break
        case .room(let room, let rest):
            head.room = room
            head.roomSubpath = rest
        case .invalid(let reason): return .rejected(.init(reason))
        }
        return .complete(head)
    }

    private static func validateHeaders(_ head: RequestHead) -> RequestHeadError? {
        if head.minorVersion == 1, head.header("host") == nil { return .init(.missingHost) }
        let lengths = head.headers.filter { $0.name.lowercased() == "content-length" }.map(\.value)
        if !lengths.isEmpty {
            if lengths.contains(where: { $0.isEmpty || !$0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } || $0.count > 18 }) {
                return .init(.badContentLength)
            }
            if Set(lengths).count > 1 || head.header("transfer-encoding") != nil { return .init(.conflictingLength) }
        }
        return nil
    }

    struct RequestLine {
        var method: String
        var target: String
        var path: String
        var query: String?
        var minor: Int
    }

    static func parseRequestLine(_ line: ArraySlice<UInt8>) -> Swift.Result<RequestLine, RequestHeadError> {
        let pieces = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard let method = pieces.first, !method.isEmpty, method.count <= 16, method.allSatisfy(isUpperAlpha) else {
            return .failure(.init(.badMethod))
        }
        guard pieces.count == 3 else { return .failure(.init(pieces.count < 3 ? .badVersion : .badTarget)) }
        let target = pieces[1]
        let version = pieces[2]
        let minor: Int
        switch String(decoding: version, as: UTF8.self) {
        case "HTTP/1.1": minor = 1
        case "HTTP/1.0": minor = 0
        default: return .failure(.init(.badVersion))
        }
        guard target.first == UInt8(ascii: "/"), target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .failure(.init(.badTarget))
        }
        let targetString = String(decoding: target, as: UTF8.self)
        let path: String
        var query: String?
        if let q = target.firstIndex(of: UInt8(ascii: "?")) {
            path = String(decoding: target[target.startIndex..<q], as: UTF8.self)
            query = String(decoding: target[(q + 1)...], as: UTF8.self)
        } else {
            path = targetString
        }
        return .success(.init(method: String(decoding: method, as: UTF8.self), target: targetString, path: path,
                              query: query, minor: minor))
    }

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

/// A parsed HTTP/1.x request head, as the proxy and the shard see it before any body or WebSocket bytes.
public struct RequestHead: Hashable, Sendable {
    /// One header line, in arrival order, name as sent.
    public struct Header: Hashable, Sendable {
        public var name: String
        public var value: String

        /// - Parameters:
        ///   - name: the field name as sent.
        ///   - value: the value with surrounding whitespace removed.
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Request method, e.g. `GET`.
    public var method: String
    /// The request target exactly as sent (`/rooms/lobby?name=alice`).
    public var target: String
    /// The target up to `?`.
    public var path: String
    /// The raw query after `?`, if any.
    public var query: String?
    /// Minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    public var minorVersion: Int
    /// Headers in arrival order.
    public var headers: [Header]
    /// The room named by `/rooms/<id>[/...]`, nil for paths outside `/rooms/`.
    public var room: RoomID?
    /// Path after the room segment (`""`, `"/messages"`, `"/events"`).
    public var roomSubpath: String
    /// Bytes the head occupied, including the final empty line.
    public var length: Int

    /// First value of a header, matched case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.equalsIgnoringASCIICase(name) }?.value
    }

    /// Whether a comma-separated header contains `token` (case-insensitive), as `Connection: keep-alive, Upgrade`.
    public func headerContainsToken(_ name: String, _ token: String) -> Bool {
        headers.contains { header in
            header.name.equalsIgnoringASCIICase(name) && Self.list(header.value, contains: token)
        }
    }

    /// Whether a comma-separated list holds `token`, ignoring case and the spaces around items; checked in place,
    /// since every proxied handshake asks it twice.
    static func list(_ value: String, contains token: String) -> Bool { list(value.utf8, contains: token.utf8) }

    static func list<Bytes: BidirectionalCollection<UInt8>>(_ bytes: Bytes, contains token: some Collection<UInt8>) -> Bool {
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.endIndex
            var first = start
            var last = end
            while first < last, bytes[first] == UInt8(ascii: " ") || bytes[first] == UInt8(ascii: "\t") {
                first = bytes.index(after: first)
            }
            while first < last {
                let before = bytes.index(before: last)
                guard bytes[before] == UInt8(ascii: " ") || bytes[before] == UInt8(ascii: "\t") else { break }
                last = before
            }
            if first < last, asciiCaseInsensitiveEqual(bytes[first..<last], token) { return true }
            start = end < bytes.endIndex ? bytes.index(after: end) : end
        }
        return false
    }

    /// Whether this asks for a WebSocket upgrade.
    public var isWebSocketUpgrade: Bool {
        headerContainsToken("connection", "upgrade") && headerContainsToken("upgrade", "websocket")
    }

    /// Decoded query items (`+` and percent-escapes decoded; malformed escapes kept literally).
    public var queryItems: [(name: String, value: String)] {
        guard let query else { return [] }
        return Self.decodeQuery(query)
    }

    /// Decodes a raw query string (`a=1&b=x+y`) into items, in order.
    public static func decodeQuery(_ query: String) -> [(name: String, value: String)] {
        query.split(separator: "&", omittingEmptySubsequences: true).map { item in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = QueryDecoding.decode(parts[0])
            let value = parts.count > 1 ? QueryDecoding.decode(parts[1]) : ""
            return (name, value)
        }
    }

    /// The first value of a query parameter.
    public func queryValue(_ name: String) -> String? { queryItems.first { $0.name == name }?.value }

    private static let versionPrefix = Array(" HTTP/1.".utf8)
    private static let lineEnd = Array("\r\n".utf8)
    private static let colonSpace = Array(": ".utf8)

    /// The head serialized again, with `extraHeaders` appended (the proxy adds `X-Forwarded-For`).
    public func serialized(adding extraHeaders: [Header] = []) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(length + 64)
        out += method.utf8
        out.append(UInt8(ascii: " "))
        out += target.utf8
        out += Self.versionPrefix
        out.append(UInt8(ascii: "0") + UInt8(clamping: minorVersion))
        for header in [headers, extraHeaders].joined() {
            out += Self.lineEnd
            out += header.name.utf8
            out += Self.colonSpace
            out += header.value.utf8
        }
        out += Self.lineEnd
        out += Self.lineEnd
        return out
    }
}

enum QueryDecoding {
    static func decode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), iterator.count >= 2,
                let hi = hexValue(iterator[iterator.startIndex]),
                let lo = hexValue(iterator[iterator.startIndex + 1])
            {
                bytes.append(hi << 4 | lo)
                iterator = iterator.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}

extension StringProtocol {
    /// Equality ignoring ASCII case, without allocating (header names and tokens are ASCII; other bytes must match
    /// exactly).
    public func equalsIgnoringASCIICase(_ other: some StringProtocol) -> Bool {
        asciiCaseInsensitiveEqual(utf8, other.utf8)
    }
}

/// Byte-wise equality ignoring the case of ASCII letters.
func asciiCaseInsensitiveEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    return zip(a, b).allSatisfy { a, b in
        a == b || (a | 0x20 == b | 0x20 && (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(a | 0x20))
    }
}

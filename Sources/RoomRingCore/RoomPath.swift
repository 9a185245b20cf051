/// Rules for finding the room in a request path: `/rooms/<roomId>[/...]`.
public enum RoomPath: Hashable, Sendable {
    /// The path is not under `/rooms/` (the demo page, `/healthz`).
    case noRoom
    /// The room, and the rest of the path after its segment (`""`, `"/messages"`, `"/events"`).
    case room(RoomID, rest: String)
    /// Under `/rooms/` but the room segment is missing or invalid.
    case invalid(RequestHeadError.Reason)

    /// Finds the room in `path` (the target before `?`).
    ///
    /// Percent-escapes in the room segment are decoded first (RFC 3986 §6.2.2.2: `%41` and `A` are the same
    /// character), then the result must be a valid ``RoomID``; `%2F` can therefore never smuggle a `/` in.
    public static func parse(_ path: String) -> RoomPath {
        let prefix = "/rooms/"
        guard path.hasPrefix(prefix) else { return .noRoom }
        let afterPrefix = path.dropFirst(prefix.count)
        let segmentEnd = afterPrefix.firstIndex(of: "/") ?? afterPrefix.endIndex
        let segment = afterPrefix[..<segmentEnd]
        guard !segment.isEmpty else { return .invalid(.missingRoom) }
        guard let decoded = percentDecode(segment), let room = RoomID(bytes: decoded) else {
            return .invalid(.invalidRoom)
        }
        return .room(room, rest: String(afterPrefix[segmentEnd...]))
    }

    /// Strict percent-decoding: a `%` not followed by two hex digits makes the segment invalid.
    static func percentDecode(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                continue
            }
            guard bytes.count >= 2, let hi = QueryDecoding.hexValue(bytes[bytes.startIndex]),
                let lo = QueryDecoding.hexValue(bytes[bytes.startIndex + 1])
            else { return nil }
            out.append(hi << 4 | lo)
            bytes = bytes.dropFirst(2)
        }
        return out
    }
}

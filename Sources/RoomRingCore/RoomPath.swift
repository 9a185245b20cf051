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
    public static func parse(_ path: String) -> RoomPath { parse(path: Array(path.utf8)[...]) }

    /// Finds the room in the bytes of a path, as the request-head parser has them.
    static func parse(path: ArraySlice<UInt8>) -> RoomPath {
        guard path.starts(with: prefix) else { return .noRoom }
        let afterPrefix = path.dropFirst(prefix.count)
        let segmentEnd = afterPrefix.firstIndex(of: UInt8(ascii: "/")) ?? afterPrefix.endIndex
        let segment = afterPrefix[..<segmentEnd]
        guard !segment.isEmpty else { return .invalid(.missingRoom) }
        let room: RoomID?
        if segment.contains(UInt8(ascii: "%")) {
            room = percentDecode(segment).flatMap { RoomID(bytes: $0) }
        } else {
            room = RoomID(bytes: segment)  // the usual case: nothing to decode, no copy
        }
        guard let room else { return .invalid(.invalidRoom) }
        return .room(room, rest: String(decoding: afterPrefix[segmentEnd...], as: UTF8.self))
    }

    private static let prefix = Array("/rooms/".utf8)

    /// Strict percent-decoding: a `%` not followed by two hex digits makes the segment invalid.
    static func percentDecode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        var bytes = text
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

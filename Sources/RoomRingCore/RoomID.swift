/// A validated room id: 1–128 characters of `A–Z a–z 0–9 . _ ~ -` (RFC 3986 unreserved characters).
///
/// Only unreserved characters are allowed so that a room id appears the same in a path, a query, a Redis channel
/// name and a log line, with no escaping anywhere.
public struct RoomID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// The longest room id accepted.
    public static let maxLength = 128

    /// The id as text.
    public let rawValue: String

    /// Validates `rawValue`.
    /// - Parameters:
    ///   - rawValue: the candidate id.
    public init?(_ rawValue: String) {
        guard RoomID.isValid(rawValue.utf8) else { return nil }
        self.rawValue = rawValue
    }

    /// Validates raw bytes (for example a slice of a request target) without creating a `String` first.
    public init?(bytes: some Collection<UInt8>) {
        guard RoomID.isValid(bytes) else { return nil }
        self.rawValue = String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `bytes` form a valid room id.
    public static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        let count = bytes.count
        guard count >= 1, count <= maxLength else { return false }
        return bytes.allSatisfy(isAllowed)
    }

    @inline(__always)
    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
            UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    public var description: String { rawValue }

    public static func < (lhs: RoomID, rhs: RoomID) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let id = RoomID(raw) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "invalid room id \"\(raw)\"")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

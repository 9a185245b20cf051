import NIOCore

/// One RESP2 value (the Redis serialization protocol, version 2).
///
/// RESP2 has two nulls, the null bulk string (`$-1`) and the null array (`*-1`); both decode to ``null``, which
/// encodes as the null bulk string.
public enum RESPValue: Hashable, Sendable {
    /// `+OK`: a short status line (never contains CR or LF).
    case simpleString(String)
    /// `-ERR ...`: an error reply; the text starts with the error kind (`ERR`, `NOSCRIPT`, `WRONGTYPE`, ...).
    case error(String)
    /// `:42`: a signed 64-bit integer.
    case integer(Int64)
    /// `$5\r\nhello`: binary-safe bytes.
    case bulkString(ByteBuffer)
    /// `*2\r\n...`: an ordered list of values.
    case array([RESPValue])
    /// `$-1` or `*-1`: no value.
    case null

    /// The value as text: simple and bulk strings (bulk decoded as UTF-8, invalid bytes replaced), integers in
    /// decimal; nil for errors, arrays and null.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(buffer: bytes)
        case .integer(let value): String(value)
        case .error, .array, .null: nil
        }
    }

    /// The value as an integer: integers, and strings holding a decimal integer (as `GET` of a counter returns).
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .simpleString(let text): Int64(text)
        case .bulkString(let bytes): Int64(String(buffer: bytes))
        case .error, .array, .null: nil
        }
    }

    /// The elements of an array reply, nil otherwise.
    public var array: [RESPValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// The bytes of a bulk string, nil otherwise.
    public var bytes: ByteBuffer? {
        if case .bulkString(let bytes) = self { return bytes }
        return nil
    }

    /// Whether this is the null reply.
    public var isNull: Bool { self == .null }
}

extension RESPValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .simpleString(let text): "+\(text)"
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .bulkString(let bytes): "\"\(String(buffer: bytes))\""
        case .array(let values): "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .null: "(nil)"
        }
    }
}

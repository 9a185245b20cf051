/// Why bytes are not valid RESP2 (or exceed the decoder's limits). After one, the stream cannot be trusted:
/// close the connection.
///
/// Compare with the static constants; ``detail`` says where and why.
public struct RESPDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case invalidType, invalidLength, invalidInteger, invalidLine, missingTerminator
        case bulkTooLong, arrayTooLong, tooDeep, lineTooLong
    }

    private let kind: Kind
    /// What exactly was wrong (for logs; not part of equality).
    public let detail: String

    private init(_ kind: Kind, _ detail: String = "") {
        self.kind = kind
        self.detail = detail
    }

    /// A value started with a byte other than `+ - : $ *`.
    public static let invalidType = RESPDecodingError(.invalidType)
    /// A bulk or array length that is not a decimal integer, or negative other than -1.
    public static let invalidLength = RESPDecodingError(.invalidLength)
    /// An integer reply that is not a decimal 64-bit integer.
    public static let invalidInteger = RESPDecodingError(.invalidInteger)
    /// A line ended by a bare LF, or containing a bare CR.
    public static let invalidLine = RESPDecodingError(.invalidLine)
    /// A bulk string's bytes were not followed by CRLF.
    public static let missingTerminator = RESPDecodingError(.missingTerminator)
    /// A bulk string longer than ``RESPDecoder/Limits/maxBulkLength``.
    public static let bulkTooLong = RESPDecodingError(.bulkTooLong)
    /// An array longer than ``RESPDecoder/Limits/maxArrayLength``.
    public static let arrayTooLong = RESPDecodingError(.arrayTooLong)
    /// Arrays nested deeper than ``RESPDecoder/Limits/maxDepth``.
    public static let tooDeep = RESPDecodingError(.tooDeep)
    /// A line (simple string, error, integer or header) longer than ``RESPDecoder/Limits/maxLineLength``.
    public static let lineTooLong = RESPDecodingError(.lineTooLong)

    func with(_ detail: String) -> RESPDecodingError { RESPDecodingError(kind, detail) }

    public static func == (lhs: RESPDecodingError, rhs: RESPDecodingError) -> Bool { lhs.kind == rhs.kind }
    public func hash(into hasher: inout Hasher) { hasher.combine(kind) }

    public var description: String {
        let name: String = switch kind {
        case .invalidType: "invalid RESP type byte"
        case .invalidLength: "invalid RESP length"
        case .invalidInteger: "invalid RESP integer"
        case .invalidLine: "invalid RESP line ending"
        case .missingTerminator: "RESP bulk string not followed by CRLF"
        case .bulkTooLong: "RESP bulk string too long"
        case .arrayTooLong: "RESP array too long"
        case .tooDeep: "RESP arrays nested too deep"
        case .lineTooLong: "RESP line too long"
        }
        return detail.isEmpty ? name : "\(name): \(detail)"
    }
}

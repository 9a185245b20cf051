import NIOCore

/// An incremental RESP2 decoder: feed it the bytes of a stream as they arrive and take out complete values.
///
/// Pure (no I/O, no clock). ``next(from:)`` consumes the bytes of each complete top-level value and leaves an
/// incomplete scalar in the buffer; arrays are assembled across calls, so a large reply arriving in many reads
/// costs time linear in its size. Limits bound what a hostile or broken peer can make it hold: a bulk string's
/// declared length, an array's declared count, nesting depth, and the length of a line.
///
/// ```swift
/// var decoder = RESPDecoder()
/// while let value = try decoder.next(from: &buffer) { handle(value) }
/// ```
///
/// After it throws, the stream is out of step and every later call throws the same error.
public struct RESPDecoder: Sendable {
    /// Bounds on what one value may declare or contain.
    public struct Limits: Hashable, Sendable {
        /// Longest bulk string accepted (default 64 MiB; Redis's own cap is 512 MiB).
        public var maxBulkLength: Int
        /// Most elements one array may declare (default 1,048,576).
        public var maxArrayLength: Int
        /// Most arrays nested in one another (default 16).
        public var maxDepth: Int
        /// Longest line (simple string, error, integer, length header) without its CRLF (default 64 KiB).
        public var maxLineLength: Int

        /// - Parameters:
        ///   - maxBulkLength: default 64 MiB.
        ///   - maxArrayLength: default 1,048,576.
        ///   - maxDepth: default 16.
        ///   - maxLineLength: default 65,536.
        public init(maxBulkLength: Int = 64 << 20, maxArrayLength: Int = 1 << 20, maxDepth: Int = 16,
                    maxLineLength: Int = 64 << 10) {
            self.maxBulkLength = maxBulkLength
            self.maxArrayLength = maxArrayLength
            self.maxDepth = maxDepth
            self.maxLineLength = maxLineLength
        }
    }

    /// The limits in force.
    public let limits: Limits
    /// Arrays opened and not yet complete, innermost last.
    private var open: [(remaining: Int, elements: [RESPValue])] = []
    /// Bytes after the type byte of the pending line already searched for LF without finding one.
    private var scanned = 0
    private var failure: RESPDecodingError?

    /// - Parameter limits: bounds on bulk length, array length, depth and line length.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Whether no value is partly decoded (no array is open): a clean boundary in the stream.
    public var isAtBoundary: Bool { open.isEmpty && failure == nil }

    /// Decodes the next complete top-level value and consumes its bytes; nil when more bytes are needed.
    /// - Throws: ``RESPDecodingError`` for malformed input or input beyond ``limits``.
    public mutating func next(from buffer: inout ByteBuffer) throws(RESPDecodingError) -> RESPValue? {
        if let failure { throw failure }
        do {
            return try decode(&buffer)
        } catch {
            failure = error
            throw error
        }
    }

    private enum Item {
        case value(RESPValue)
        case arrayHeader(Int)
    }

    private mutating func decode(_ buffer: inout ByteBuffer) throws(RESPDecodingError) -> RESPValue? {
        outer: while true {
            guard let item = try item(&buffer) else { return nil }
            var value: RESPValue
            switch item {
            case .value(let scalar):
                value = scalar
            case .arrayHeader(let count):
                guard open.count < limits.maxDepth else {
                    throw .tooDeep.with("more than \(limits.maxDepth) nested arrays")
                }
                if count > 0 {
                    open.append((count, []))
                    continue outer
                }
                value = .array([])
            }
            // Attach the finished value to the innermost open array; a completed array is itself a finished value.
            while !open.isEmpty {
                let last = open.count - 1
                open[last].elements.append(value)
                open[last].remaining -= 1
                if open[last].remaining > 0 { continue outer }
                value = .array(open.removeLast().elements)
            }
            return value
        }
    }

    /// Decodes one scalar or array header, consuming its bytes; nil (consuming nothing) when incomplete.
    private mutating func item(_ buffer: inout ByteBuffer) throws(RESPDecodingError) -> Item? {
        let view = buffer.readableBytesView
        guard let type = view.first else { return nil }
        switch type {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "$"), UInt8(ascii: "*"): break
        default: throw .invalidType.with("byte 0x\(String(type, radix: 16))")
        }
        guard let line = try line(in: view) else { return nil }
        let content = view[line.content]
        switch type {
        case UInt8(ascii: "+"):
            consume(&buffer, line.end)
            return .value(.simpleString(String(decoding: content, as: UTF8.self)))
        case UInt8(ascii: "-"):
            consume(&buffer, line.end)
            return .value(.error(String(decoding: content, as: UTF8.self)))
        case UInt8(ascii: ":"):
            guard let number = Self.integer(content) else {
                throw .invalidInteger.with("\"\(String(decoding: content.prefix(32), as: UTF8.self))\"")
            }
            consume(&buffer, line.end)
            return .value(.integer(number))
        case UInt8(ascii: "$"):
            let length = try Self.length(content)
            if length < 0 {
                consume(&buffer, line.end)
                return .value(.null)
            }
            guard length <= limits.maxBulkLength else {
                throw .bulkTooLong.with("\(length) bytes declared, limit \(limits.maxBulkLength)")
            }
            guard view.count >= line.end + length + 2 else { return nil }
            let terminator = view.startIndex + line.end + length
            guard view[terminator] == UInt8(ascii: "\r"), view[terminator + 1] == UInt8(ascii: "\n") else {
                throw .missingTerminator.with("after \(length) bytes")
            }
            let bytes = buffer.getSlice(at: buffer.readerIndex + line.end, length: length)!
            consume(&buffer, line.end + length + 2)
            return .value(.bulkString(bytes))
        default:  // "*"
            let count = try Self.length(content)
            if count < 0 {
                consume(&buffer, line.end)
                return .value(.null)
            }
            guard count <= limits.maxArrayLength else {
                throw .arrayTooLong.with("\(count) elements declared, limit \(limits.maxArrayLength)")
            }
            consume(&buffer, line.end)
            return .arrayHeader(count)
        }
    }

    /// Finds the CRLF ending the line that starts at the type byte: the content's range (in `view`'s indices)
    /// and the offset just past the LF. Nil when no LF has arrived yet.
    private mutating func line(in view: ByteBufferView) throws(RESPDecodingError)
        -> (content: Range<ByteBufferView.Index>, end: Int)?
    {
        let contentStart = view.startIndex + 1
        // The content may be maxLineLength bytes, then CR, then LF.
        let searchEnd = min(view.endIndex, contentStart + limits.maxLineLength + 2)
        let searchStart = min(contentStart + scanned, searchEnd)
        guard let lf = view[searchStart..<searchEnd].firstIndex(of: UInt8(ascii: "\n")) else {
            if view.endIndex - contentStart >= limits.maxLineLength + 2 {
                throw .lineTooLong.with("no CRLF within \(limits.maxLineLength) bytes")
            }
            scanned = searchEnd - contentStart
            return nil
        }
        guard lf > contentStart, view[lf - 1] == UInt8(ascii: "\r") else {
            throw .invalidLine.with("LF without CR")
        }
        let content = contentStart..<(lf - 1)
        if view[content].contains(UInt8(ascii: "\r")) { throw .invalidLine.with("CR inside a line") }
        return (content, lf + 1 - view.startIndex)
    }

    private mutating func consume(_ buffer: inout ByteBuffer, _ count: Int) {
        buffer.moveReaderIndex(forwardBy: count)
        scanned = 0
    }

    /// A length header: a non-negative decimal, or -1 for null.
    private static func length(_ content: ByteBufferView.SubSequence) throws(RESPDecodingError) -> Int {
        guard let value = integer(content), value >= -1, value <= Int64(Int.max) else {
            throw .invalidLength.with("\"\(String(decoding: content.prefix(32), as: UTF8.self))\"")
        }
        return Int(value)
    }

    /// A decimal Int64 with an optional leading minus sign; nil on anything else or overflow.
    static func integer(_ bytes: some Collection<UInt8>) -> Int64? {
        var iterator = bytes.makeIterator()
        guard var byte = iterator.next() else { return nil }
        let negative = byte == UInt8(ascii: "-")
        if negative {
            guard let next = iterator.next() else { return nil }
            byte = next
        }
        var value: Int64 = 0
        while true {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit)
                : shifted.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { return nil }
            value = next
            guard let following = iterator.next() else { return value }
            byte = following
        }
    }
}

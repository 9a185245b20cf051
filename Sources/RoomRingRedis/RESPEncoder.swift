import NIOCore

/// Writes RESP2: commands (an array of bulk strings, the only form a client sends) and any value (for tests and
/// servers).
public enum RESPEncoder {
    /// Appends `command` to `buffer` as `*<n>\r\n` followed by one `$<len>\r\n<bytes>\r\n` per argument.
    public static func encode(_ command: RESPCommand, into buffer: inout ByteBuffer) {
        writeHeader(UInt8(ascii: "*"), command.arguments.count, into: &buffer)
        for argument in command.arguments {
            writeHeader(UInt8(ascii: "$"), argument.readableBytes, into: &buffer)
            var bytes = argument
            buffer.writeBuffer(&bytes)
            buffer.writeStaticString("\r\n")
        }
    }

    /// Appends `value` to `buffer` in RESP2; ``RESPValue/null`` is written as the null bulk string.
    ///
    /// A simple string or error containing CR or LF cannot be represented; those bytes are replaced by spaces.
    public static func encode(_ value: RESPValue, into buffer: inout ByteBuffer) {
        switch value {
        case .simpleString(let text):
            buffer.writeInteger(UInt8(ascii: "+"))
            writeLine(text, into: &buffer)
        case .error(let text):
            buffer.writeInteger(UInt8(ascii: "-"))
            writeLine(text, into: &buffer)
        case .integer(let number):
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeString(String(number))
            buffer.writeStaticString("\r\n")
        case .bulkString(let bytes):
            writeHeader(UInt8(ascii: "$"), bytes.readableBytes, into: &buffer)
            var bytes = bytes
            buffer.writeBuffer(&bytes)
            buffer.writeStaticString("\r\n")
        case .array(let values):
            writeHeader(UInt8(ascii: "*"), values.count, into: &buffer)
            for element in values { encode(element, into: &buffer) }
        case .null:
            buffer.writeStaticString("$-1\r\n")
        }
    }

    /// `command` as a new buffer.
    public static func bytes(_ command: RESPCommand) -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(command, into: &buffer)
        return buffer
    }

    /// `value` as a new buffer.
    public static func bytes(_ value: RESPValue) -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(value, into: &buffer)
        return buffer
    }

    private static func writeHeader(_ type: UInt8, _ count: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(type)
        buffer.writeString(String(count))
        buffer.writeStaticString("\r\n")
    }

    private static func writeLine(_ text: String, into buffer: inout ByteBuffer) {
        for byte in text.utf8 {
            buffer.writeInteger(byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") ? UInt8(ascii: " ") : byte)
        }
        buffer.writeStaticString("\r\n")
    }
}

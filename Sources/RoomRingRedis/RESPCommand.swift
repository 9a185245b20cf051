import NIOCore

/// A Redis command: the command name and its arguments, each sent as a bulk string.
///
/// ```swift
/// let set = RESPCommand("SET", "greeting", "hello")
/// let incr = RESPCommand("INCRBY", "counter", 5)
/// ```
public struct RESPCommand: Hashable, Sendable {
    /// The name first, then the arguments.
    public var arguments: [ByteBuffer]

    /// - Parameters:
    ///   - name: the command, e.g. `"GET"`.
    ///   - arguments: its arguments, in order.
    public init(_ name: String, _ arguments: any RESPArgument...) {
        self.init(name, arguments: arguments)
    }

    /// - Parameters:
    ///   - name: the command, e.g. `"MGET"`.
    ///   - arguments: its arguments, in order.
    public init(_ name: String, arguments: [any RESPArgument]) {
        var all = [ByteBuffer(string: name)]
        all.reserveCapacity(arguments.count + 1)
        for argument in arguments { all.append(argument.respBytes) }
        self.arguments = all
    }

    /// The command's name, upper-cased (for logs and error messages).
    public var name: String { arguments.first.map { String(buffer: $0).uppercased() } ?? "" }
}

/// A value that can be a command argument (sent as a bulk string).
public protocol RESPArgument: Sendable {
    /// The argument's bytes.
    var respBytes: ByteBuffer { get }
}

extension String: RESPArgument {
    public var respBytes: ByteBuffer { ByteBuffer(string: self) }
}

extension Substring: RESPArgument {
    public var respBytes: ByteBuffer { ByteBuffer(string: String(self)) }
}

extension Int: RESPArgument {
    public var respBytes: ByteBuffer { ByteBuffer(string: String(self)) }
}

extension Int64: RESPArgument {
    public var respBytes: ByteBuffer { ByteBuffer(string: String(self)) }
}

extension UInt64: RESPArgument {
    public var respBytes: ByteBuffer { ByteBuffer(string: String(self)) }
}

extension ByteBuffer: RESPArgument {
    public var respBytes: ByteBuffer { self }
}

extension Array: RESPArgument where Element == UInt8 {
    public var respBytes: ByteBuffer { ByteBuffer(bytes: self) }
}

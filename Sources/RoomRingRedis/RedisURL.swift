/// Where a Redis server is and how to log in: `redis://[[username]:password@]host[:port][/db]`.
///
/// `host` may be a name, an IPv4 address or a bracketed IPv6 address (`redis://[::1]:6380`); the port defaults to
/// 6379 and the database to 0. The user name and password are percent-decoded. TLS (`rediss://`) and Unix sockets
/// are not supported.
public struct RedisURL: Hashable, Sendable, CustomStringConvertible {
    /// Host name or address (IPv6 without brackets).
    public var host: String
    /// TCP port.
    public var port: Int
    /// Database index for `SELECT` (0 needs no `SELECT`).
    public var database: Int
    /// User name for `AUTH username password` (Redis 6 ACLs); nil sends `AUTH password`.
    public var username: String?
    /// Password for `AUTH`; nil sends no `AUTH`.
    public var password: String?

    /// - Parameters:
    ///   - host: host name or address.
    ///   - port: default 6379.
    ///   - database: default 0.
    ///   - username: ACL user name, default none.
    ///   - password: default none.
    public init(host: String, port: Int = 6379, database: Int = 0, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
    }

    /// Parses a `redis://` URL.
    /// - Throws: ``RedisURLError`` naming what is wrong.
    public init(parsing text: String) throws(RedisURLError) {
        guard text.hasPrefix("redis://") else {
            if text.hasPrefix("rediss://") { throw RedisURLError("rediss:// (TLS) is not supported; use redis://") }
            throw RedisURLError("\"\(text)\" is not a redis:// URL")
        }
        var rest = Substring(text.dropFirst("redis://".count))
        if let query = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            throw RedisURLError("unexpected \"\(rest[query...])\" in a Redis URL")
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else {
                    throw RedisURLError("database \"\(path)\" is not a non-negative integer")
                }
                database = number
            }
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = try Self.percentDecoded(userInfo[..<colon])
                username = user.isEmpty ? nil : user
                password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...])
            } else if !userInfo.isEmpty {
                // redis://secret@host: a lone user-info part is the password (as redis-cli reads it).
                password = try Self.percentDecoded(userInfo)
            }
        }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw RedisURLError("unterminated [ in host") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw RedisURLError("unexpected \"\(after)\" after the host") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
            if host.contains(":") { throw RedisURLError("IPv6 hosts must be in brackets: redis://[::1]:6379") }
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw RedisURLError("missing host in \"\(text)\"") }
        var port = 6379
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw RedisURLError("port \"\(portText)\" is not in 1...65535")
            }
            port = number
        }
        self.init(host: String(host), port: port, database: database, username: username, password: password)
    }

    /// The URL, with the password masked (safe to log and print).
    public var description: String {
        var out = "redis://"
        if let username { out += username + ":***@" } else if password != nil { out += ":***@" }
        out += host.contains(":") ? "[\(host)]" : host
        out += ":\(port)"
        if database != 0 { out += "/\(database)" }
        return out
    }

    private static func percentDecoded(_ text: Substring) throws(RedisURLError) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw RedisURLError("bad percent-escape in the user info")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw RedisURLError("the user info is not UTF-8 after percent-decoding")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A Redis URL that cannot be used; the description says why.
public struct RedisURLError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

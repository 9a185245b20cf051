import Foundation
import NIOCore
import NIOPosix
import RoomRingCore

/// A one-request-per-connection HTTP/1.1 client for admin APIs, health checks and tests.
///
/// Deliberately small: it sends `Connection: close`, reads until the server closes, and parses the answer.
public enum HTTPClient {
    /// A received response.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        /// The body as UTF-8 text.
        public var text: String { String(decoding: body, as: UTF8.self) }

        /// First header value by case-insensitive name.
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    /// Errors from ``request(_:host:port:path:headers:body:timeout:group:)``.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Sends one request and waits for the whole response.
    /// - Parameters:
    ///   - method: `GET`, `PUT`, `POST`...
    ///   - host: server host.
    ///   - port: server port.
    ///   - path: request target.
    ///   - headers: extra headers.
    ///   - body: request body.
    ///   - timeout: overall deadline (default 5 s).
    ///   - group: event loops.
    public static func request(
        _ method: String, host: String, port: Int, path: String, headers: [(String, String)] = [],
        body: [UInt8] = [], timeout: Duration = .seconds(5),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Response {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "PUT" || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        let raw = try await exchange(host: host, port: port, send: Array(head.utf8) + body, timeout: timeout,
                                     group: group)
        return try parse(raw)
    }

    /// Writes `send`, then collects everything the server sends until it closes (or the deadline passes).
    public static func exchange(host: String, port: Int, send: [UInt8], timeout: Duration = .seconds(5),
                                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws
        -> [UInt8]
    {
        let millis = Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let loop = group.next()
        let promise = loop.makePromise(of: [UInt8].self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.milliseconds(millis))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(CollectHandler(promise: promise))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            promise.fail(error)
            throw error
        }
        channel.writeAndFlush(ByteBuffer(bytes: send), promise: nil)
        // At the deadline, close: the handler then completes with whatever arrived, and parsing reports it.
        let timer = channel.eventLoop.scheduleTask(in: .milliseconds(millis)) { channel.close(promise: nil) }
        defer { timer.cancel() }
        return try await promise.futureResult.get()
    }

    /// Parses a complete HTTP/1.1 response (Content-Length or read-until-close bodies).
    public static func parse(_ raw: [UInt8]) throws -> Response {
        guard let end = findHeadEnd(raw) else { throw Failure(description: "incomplete HTTP response") }
        let head = String(decoding: raw[0..<end], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure(description: "malformed status line \"\(lines[0].prefix(80))\"")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var body = Array(raw[(end + 4)...])
        if let length = headers.first(where: { $0.name.lowercased() == "content-length" }).flatMap({ Int($0.value) }),
            body.count > length
        {
            body = Array(body.prefix(length))
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// Index of the `\r\n\r\n` that ends an HTTP head, if present.
    public static func findHeadEnd(_ bytes: [UInt8]) -> Int? { ResponseHeadScan.headEnd(bytes).map { $0 - 4 } }
}

private final class CollectHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let promise: EventLoopPromise<[UInt8]>
    private var bytes: [UInt8] = []

    init(promise: EventLoopPromise<[UInt8]>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytesView
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(bytes)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset after the server's answer still leaves a usable answer.
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension CollectHandler: Sendable {}

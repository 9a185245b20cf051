import NIOCore
import NIOHTTP1
import NIOWebSocket
import RoomRingCore

/// A complete HTTP request as the routers see it.
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: ByteBuffer
    /// The path before `?`.
    public var path: Substring { head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "" }
    /// The query after `?`, if any.
    public var query: Substring? {
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        return parts.count > 1 ? parts[1] : nil
    }
}

/// A response to send.
public struct HTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    /// - Parameters:
    ///   - status: response status.
    ///   - headers: extra headers.
    ///   - body: the body.
    ///   - contentType: its type.
    public init(_ status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer(),
         contentType: String = "text/plain; charset=utf-8") {
        self.status = status
        self.headers = headers
        self.body = body
        self.headers.replaceOrAdd(name: "Content-Type", value: contentType)
    }

    /// A JSON error body, `{"error":{"code":...,"message":...}}`, the shape every RoomRing endpoint uses.
    public static func error(_ status: HTTPResponseStatus, code: String, _ message: String, headers: HTTPHeaders = [:])
        -> HTTPResponse
    {
        let body = #"{"error":{"code":"# + JSONText.quoted(code) + #","message":"# + JSONText.quoted(message) + "}}\n"
        return HTTPResponse(status, headers: headers, body: ByteBuffer(string: body), contentType: "application/json")
    }

    /// A JSON body.
    public static func json(_ text: String, status: HTTPResponseStatus = .ok) -> HTTPResponse {
        HTTPResponse(status, body: ByteBuffer(string: text), contentType: "application/json")
    }

    /// A plain-text body.
    public static func text(_ text: String, status: HTTPResponseStatus = .ok) -> HTTPResponse {
        HTTPResponse(status, body: ByteBuffer(string: text))
    }

    /// Writes this response (head, body, end) on `context`, whose outbound type is `HTTPServerResponsePart`, with
    /// `Content-Length`, `Connection: close` unless `keepAlive`, and `X-Request-ID` when given. The future is the end's
    /// write.
    @discardableResult
    public func write(to context: ChannelHandlerContext, keepAlive: Bool, requestID: String? = nil)
        -> EventLoopFuture<Void>
    {
        let head = HTTPResponseHead(version: .http1_1, status: status,
                                    headers: completedHeaders(keepAlive: keepAlive, requestID: requestID))
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        if body.readableBytes > 0 { context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil) }
        return context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
    }

    /// This response as bytes, with `Connection: close`, for a raw socket (the proxy's tunnel loops answer some
    /// requests themselves, outside any NIO pipeline).
    public func closingBytes(requestID: String?) -> [UInt8] {
        var text = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n"
        for (name, value) in completedHeaders(keepAlive: false, requestID: requestID) { text += "\(name): \(value)\r\n" }
        return Array((text + "\r\n").utf8) + body.readableBytesView
    }

    private func completedHeaders(keepAlive: Bool, requestID: String?) -> HTTPHeaders {
        var headers = self.headers
        if let requestID { headers.replaceOrAdd(name: RequestIDGenerator.header, value: requestID) }
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        return headers
    }
}

/// Routes a complete request to a response, possibly asynchronously (the admin API asks every event loop).
public typealias HTTPRouter = @Sendable (HTTPRequest, any Channel) -> EventLoopFuture<HTTPResponse>

/// Collects one request at a time (bounded body), asks the router, writes the answer; keep-alive aware.
public final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    private let router: HTTPRouter
    private let maxBodyBytes: Int
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    /// - Parameters:
    ///   - maxBodyBytes: larger bodies get 413.
    ///   - router: answers each request.
    public init(maxBodyBytes: Int, router: @escaping HTTPRouter) {
        self.maxBodyBytes = maxBodyBytes
        self.router = router
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            tooLarge = false
        case .body(var chunk):
            guard !tooLarge else { return }
            if body.readableBytes + chunk.readableBytes > maxBodyBytes {
                tooLarge = true
                body.clear()
            } else {
                body.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            // Echoed so a caller (or the proxy's log) can match this answer to the shard's log lines.
            let requestID = RequestIDGenerator.sanitized(head.headers.first(name: RequestIDGenerator.header))
            if tooLarge {
                write(.error(.payloadTooLarge, code: "too_large", "body is larger than \(maxBodyBytes) bytes"),
                      keepAlive: false, requestID: requestID, context: context)
                return
            }
            let request = HTTPRequest(head: head, body: body)
            let keepAlive = head.isKeepAlive
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            router(request, context.channel).hop(to: context.eventLoop).whenComplete { result in
                let (handler, context) = bound.value
                let response = (try? result.get())
                    ?? .error(.internalServerError, code: "internal", "the request could not be served")
                handler.write(response, keepAlive: keepAlive, requestID: requestID, context: context)
            }
        }
    }

    private func write(_ response: HTTPResponse, keepAlive: Bool, requestID: String?, context: ChannelHandlerContext) {
        let done = response.write(to: context, keepAlive: keepAlive, requestID: requestID)
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A failed WebSocket handshake is reported here and then delivered as a plain request, which the router
        // answers (400/421/426); anything else ends the connection.
        if error is NIOWebSocketUpgradeError { return }
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTPRequestHandler: Sendable {}

import NIOCore
import NIOPosix

/// A Server-Sent Events client over NIO for `GET /rooms/<id>/events`: it sends the request, checks for `200`, and
/// turns the (chunked or until-close) body into events. Tests and tools use it; browsers have `EventSource`.
public final class EventStreamConnection: Sendable {
    /// One dispatched event (WHATWG HTML §9.2.6).
    public struct Event: Sendable, Hashable {
        /// `id:` of the event, when it had one.
        public var id: String?
        /// `event:`, `"message"` when absent.
        public var event: String
        /// The `data:` lines joined with newlines.
        public var data: String
    }

    /// What arrived.
    public enum Item: Sendable, Hashable {
        case event(Event)
        /// A comment line (`: keepalive`), without the colon and space.
        case comment(String)
        /// The stream ended (the server closed it).
        case ended
    }

    /// The server answered something other than `200` (its status, headers and body).
    public struct Refused: Error, Sendable, CustomStringConvertible {
        public var response: HTTPClient.Response
        public var description: String { "event stream refused with \(response.status): \(response.text)" }
    }

    public let channel: any Channel
    /// Items in arrival order.
    public let items: EventInbox<Item>
    /// The `200` response's headers.
    public let headers: [(name: String, value: String)]

    private init(channel: any Channel, items: EventInbox<Item>, headers: [(name: String, value: String)]) {
        self.channel = channel
        self.items = items
        self.headers = headers
    }

    /// Opens a stream.
    /// - Parameters:
    ///   - path: request target, e.g. `/rooms/lobby/events`.
    ///   - lastEventID: sent as `Last-Event-ID`, as a reconnecting `EventSource` does.
    ///   - timeout: deadline for the response head.
    /// - Throws: ``Refused`` for a non-200 answer, or a connection error.
    public static func connect(host: String, port: Int, path: String, lastEventID: String? = nil,
                               headers: [(String, String)] = [], timeout: Duration = .seconds(5),
                               group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws
        -> EventStreamConnection
    {
        let inbox = EventInbox<Item>()
        let channel = try await ClientBootstrap(group: group)
            .connect(host: host, port: port).get()
        let head = channel.eventLoop.makePromise(of: HTTPClient.Response.self)
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(EventStreamClientHandler(head: head, inbox: inbox))
        }.get()
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAccept: text/event-stream\r\n"
        if let lastEventID { request += "Last-Event-ID: \(lastEventID)\r\n" }
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        channel.writeAndFlush(ByteBuffer(string: request + "\r\n"), promise: nil)
        let millis = Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let timer = channel.eventLoop.scheduleTask(in: .milliseconds(millis)) { channel.close(promise: nil) }
        defer { timer.cancel() }
        let response: HTTPClient.Response
        do {
            response = try await head.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        guard response.status == 200 else {
            try? await channel.close()
            throw Refused(response: response)
        }
        return EventStreamConnection(channel: channel, items: inbox, headers: response.headers)
    }

    /// The next item, waiting at most `timeout`.
    public func next(timeout: Duration = .seconds(5)) async throws -> Item { try await items.next(timeout: timeout) }

    /// The next event, skipping comments; throws when the stream ends first.
    public func nextEvent(timeout: Duration = .seconds(5)) async throws -> Event {
        let deadline = ContinuousClock.now + timeout
        while true {
            switch try await items.next(timeout: deadline - .now) {
            case .event(let event): return event
            case .comment: continue
            case .ended: throw HTTPClient.Failure(description: "the event stream ended")
            }
        }
    }

    public func close() async { try? await channel.close() }
}

/// Parses the response: the head, then a chunked or until-close body, then event-stream lines.
private final class EventStreamClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private enum Body {
        case head
        /// A non-200 answer: collected until close.
        case refusal(HTTPClient.Response)
        case raw
        case chunkSize
        case chunkData(remaining: Int)
        case chunkEnd
        case done
    }

    private var head: EventLoopPromise<HTTPClient.Response>?
    private let inbox: EventInbox<EventStreamConnection.Item>
    private var body = Body.head
    private var buffer: [UInt8] = []
    private var parser = ServerSentEventParser()

    init(head: EventLoopPromise<HTTPClient.Response>, inbox: EventInbox<EventStreamConnection.Item>) {
        self.head = head
        self.inbox = inbox
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        buffer += unwrapInboundIn(data).readableBytesView
        process()
    }

    private func process() {
        while true {
            switch body {
            case .head:
                guard let end = HTTPClient.findHeadEnd(buffer), let response = try? HTTPClient.parse(buffer) else { return }
                buffer.removeFirst(end + 4)
                guard response.status == 200 else {
                    body = .refusal(response)
                    continue
                }
                head?.succeed(response)
                head = nil
                body = response.header("transfer-encoding")?.lowercased() == "chunked" ? .chunkSize : .raw
            case .refusal(var response):
                response.body = buffer
                body = .refusal(response)
                return
            case .raw:
                feed(buffer[...])
                buffer.removeAll()
                return
            case .chunkSize:
                guard let lineEnd = crlf(in: buffer) else { return }
                let text = String(decoding: buffer[..<lineEnd], as: UTF8.self)
                let size = Int(text.split(separator: ";").first ?? "", radix: 16) ?? 0
                buffer.removeFirst(lineEnd + 2)
                body = size == 0 ? .done : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard !buffer.isEmpty else { return }
                let take = min(remaining, buffer.count)
                feed(buffer[..<take])
                buffer.removeFirst(take)
                body = take == remaining ? .chunkEnd : .chunkData(remaining: remaining - take)
            case .chunkEnd:
                guard buffer.count >= 2 else { return }
                buffer.removeFirst(2)
                body = .chunkSize
            case .done:
                buffer.removeAll()
                return
            }
        }
    }

    private func feed(_ bytes: ArraySlice<UInt8>) {
        for item in parser.feed(bytes) { inbox.push(item) }
    }

    private func crlf(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for i in 0..<(bytes.count - 1) where bytes[i] == 13 && bytes[i + 1] == 10 { return i }
        return nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .refusal(let response) = body {
            head?.succeed(response)
        } else {
            head?.fail(HTTPClient.Failure(description: "closed before an event-stream response head"))
        }
        head = nil
        inbox.push(.ended)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension EventStreamClientHandler: Sendable {}

/// The event-stream line format (WHATWG HTML §9.2.6): fields accumulate until a blank line dispatches them.
struct ServerSentEventParser {
    private var line: [UInt8] = []
    private var lastWasCR = false
    private var id: String?
    private var event = ""
    private var data: [String] = []

    mutating func feed(_ bytes: ArraySlice<UInt8>) -> [EventStreamConnection.Item] {
        var out: [EventStreamConnection.Item] = []
        for byte in bytes {
            if byte == 10, lastWasCR {
                lastWasCR = false
                continue
            }
            lastWasCR = byte == 13
            if byte == 10 || byte == 13 {
                if let item = endLine() { out.append(item) }
            } else {
                line.append(byte)
            }
        }
        return out
    }

    private mutating func endLine() -> EventStreamConnection.Item? {
        defer { line.removeAll(keepingCapacity: true) }
        guard !line.isEmpty else {
            defer { (event, data) = ("", []) }
            guard !data.isEmpty else { return nil }
            return .event(.init(id: id, event: event.isEmpty ? "message" : event, data: data.joined(separator: "\n")))
        }
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix(":") { return .comment(String(text.dropFirst().drop { $0 == " " })) }
        let colon = text.firstIndex(of: ":") ?? text.endIndex
        let field = text[..<colon]
        var value = colon < text.endIndex ? text[text.index(after: colon)...] : ""
        if value.hasPrefix(" ") { value = value.dropFirst() }
        switch field {
        case "event": event = String(value)
        case "data": data.append(String(value))
        case "id": id = String(value)
        default: break
        }
        return nil
    }
}

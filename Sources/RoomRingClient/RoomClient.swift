import Foundation
import NIOCore
import NIOPosix
import RoomRingCore

/// A room member that survives moves and restarts: it reconnects with jittered exponential backoff, resumes with
/// `since`, resends unacknowledged messages (the shard drops duplicates by `(client, id)`), drops duplicate
/// deliveries by seq, and tells the app when history could not be resumed.
public actor RoomClient {
    /// What the app sees of the connection.
    public enum State: Sendable, Equatable {
        case connecting
        /// Connected; `resumed` is false when the shard could not replay everything since the last seq seen.
        case connected(shard: String, seq: UInt64, resumed: Bool)
        /// Waiting `delay` before attempt `attempt`, after `reason`.
        case reconnecting(attempt: Int, delay: Duration, reason: String)
        case closed
    }

    /// Tuning; the defaults suit a browser-like chat client.
    public struct Options: Sendable {
        public var name: String
        /// Identifies this client across reconnects (dedup key); random by default.
        public var clientID: String
        /// First backoff step (default 100 ms); attempt n waits a random time up to `base × 2ⁿ`.
        public var backoffBase: Duration
        /// Longest backoff (default 5 s).
        public var backoffMax: Duration
        /// Reconnect after this much silence (the shard pings every 20 s by default).
        public var silenceTimeout: Duration

        public init(name: String, clientID: String = "c-" + UUID().uuidString.prefix(12).lowercased(),
                    backoffBase: Duration = .milliseconds(100), backoffMax: Duration = .seconds(5),
                    silenceTimeout: Duration = .seconds(60)) {
            self.name = name
            self.clientID = clientID
            self.backoffBase = backoffBase
            self.backoffMax = backoffMax
            self.silenceTimeout = silenceTimeout
        }
    }

    private struct Pending {
        var id: String
        var text: String
        var waiter: CheckedContinuation<UInt64, any Error>?
    }

    /// The client was closed before the message was acknowledged.
    public struct Closed: Error {}

    public let host: String
    public let port: Int
    public let room: RoomID
    public let options: Options
    private let onMessage: @Sendable (ServerMessage.Chat) -> Void
    private let onState: @Sendable (State) -> Void
    private let group: any EventLoopGroup

    /// Highest seq delivered to the app.
    public private(set) var lastSeq: UInt64?
    /// The message delivered at `lastSeq`: resuming asks for it again, to prove the room's history is the same one.
    private var lastChat: ServerMessage.Chat?
    private var outbox: [Pending] = []
    private var nextID = 0
    /// Message ids are unique per instance: a later session under the same client id (`roomring chat --client`)
    /// must not have its first messages taken for resends of the previous session's and swallowed by dedup.
    private let session = String(UInt64.random(in: 0...UInt64(UInt32.max)), radix: 36)
    private var connection: WebSocketConnection?
    private var loop: Task<Void, Never>?
    private var closed = false
    private var resend: Task<Void, Never>?

    /// - Parameters:
    ///   - host: proxy or shard host.
    ///   - port: its port.
    ///   - room: the room.
    ///   - options: name, client id, backoff.
    ///   - group: event loops for the socket.
    ///   - onMessage: every chat, once, in seq order.
    ///   - onState: connection state changes.
    public init(host: String, port: Int, room: RoomID, options: Options,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                onMessage: @escaping @Sendable (ServerMessage.Chat) -> Void = { _ in },
                onState: @escaping @Sendable (State) -> Void = { _ in }) {
        self.host = host
        self.port = port
        self.room = room
        self.options = options
        self.group = group
        self.onMessage = onMessage
        self.onState = onState
    }

    /// Starts connecting (and reconnecting) in the background.
    public func start() {
        guard loop == nil else { return }
        loop = Task { await self.run() }
    }

    /// Sends a chat; returns its seq once acknowledged, resending after reconnects until then.
    public func send(_ text: String) async throws -> UInt64 {
        guard !closed else { throw Closed() }
        nextID += 1
        let id = "\(session)-\(nextID)"
        return try await withCheckedThrowingContinuation { continuation in
            outbox.append(Pending(id: id, text: text, waiter: continuation))
            connection?.send(text: ClientMessage.chat(message: text, id: id).encoded())
        }
    }

    /// Messages sent and not yet acknowledged.
    public var unacknowledged: Int { outbox.count }

    /// Closes for good; unacknowledged sends fail with ``Closed``.
    public func close() async {
        closed = true
        loop?.cancel()
        resend?.cancel()
        if let connection {
            connection.sendClose(code: 1000)
            await connection.close()
        }
        for pending in outbox { pending.waiter?.resume(throwing: Closed()) }
        outbox = []
        onState(.closed)
    }

    private func run() async {
        var attempt = 0
        while !closed, !Task.isCancelled {
            onState(.connecting)
            var reason = "connect failed"
            var quick = false
            do {
                let connection = try await connect()
                attempt = 0
                (reason, quick) = await serve(connection)
            } catch let refused as WebSocketConnection.Refused {
                reason = "refused with \(refused.status)"
            } catch {
                reason = "\(error)"
            }
            connection = nil
            guard !closed, !Task.isCancelled else { return }
            attempt += 1
            // Full jitter spreads a drained shard's members over time instead of a reconnect storm.
            let ceiling = quick ? .milliseconds(250) : min(options.backoffMax, options.backoffBase * (1 << min(attempt, 16)))
            let delay = Duration.nanoseconds(Int64.random(in: 0...max(1, ceiling.nanoseconds)))
            onState(.reconnecting(attempt: attempt, delay: delay, reason: reason))
            try? await Task.sleep(for: delay)
        }
    }

    private func connect() async throws -> WebSocketConnection {
        var path = "/rooms/\(room)?name=\(Self.escape(options.name))&client=\(Self.escape(options.clientID))"
        if let lastSeq { path += "&since=\(probe == nil ? lastSeq : lastSeq - 1)" }
        return try await WebSocketConnection.connect(host: host, port: port, path: path, group: group)
    }

    /// The last message seen, when a resume should start one message early to check it comes back unchanged.
    ///
    /// A room whose shard lost its state (SIGKILL, restart) starts again at seq 1; once it is past the seq a client
    /// resumes from, the shard cannot tell the two histories apart and would answer `resumed: true`, replaying
    /// messages of the new history as if they followed the old. The client can tell: its last message is missing.
    private var probe: ServerMessage.Chat? {
        guard let lastSeq, lastSeq > 0, let lastChat, lastChat.seq == lastSeq else { return nil }
        return lastChat
    }

    /// Reads until the connection ends; returns why, and whether to reconnect at once (a move or restart).
    private func serve(_ connection: WebSocketConnection) async -> (String, Bool) {
        self.connection = connection
        let asked = lastSeq
        let probe = self.probe
        do {
            guard case .hello(let hello) = try await connection.nextMessage(timeout: .seconds(10)) else {
                await connection.close()
                return ("no hello", false)
            }
            var restarted = false
            if let asked, hello.seq < asked {
                restarted = true  // the room lost its state: its seq numbers begin again
            } else if let probe, hello.resumed {
                // Replay starts with the message at `asked`: the same one, or this is another history.
                restarted = try await connection.nextMessage(timeout: .seconds(10)) != .chat(probe)
            }
            if restarted {
                lastSeq = hello.seq  // what the replay holds belongs to the new history, before this client
                lastChat = nil
            }
            if lastSeq == nil { lastSeq = hello.seq }
            let resumed = asked == nil || hello.resumed && !restarted
            onState(.connected(shard: hello.shard, seq: hello.seq, resumed: resumed))
            for pending in outbox {
                connection.send(text: ClientMessage.chat(message: pending.text, id: pending.id).encoded())
            }
            while true {
                switch try await connection.next(timeout: options.silenceTimeout) {
                case .text(let text):
                    handle(try ServerMessage.decode(Array(text.utf8)))
                case .close(let code, let reason):
                    await connection.close()
                    return ("closed \(code.map(String.init) ?? "-") \(reason)", code == 1012 || code == 1001)
                case .disconnected:
                    return ("disconnected", false)
                default:
                    continue
                }
            }
        } catch {
            await connection.close()
            return ("\(error)", false)
        }
    }

    private func handle(_ message: ServerMessage) {
        switch message {
        case .chat(let chat):
            if let lastSeq, chat.seq <= lastSeq { return }
            lastSeq = chat.seq
            lastChat = chat
            onMessage(chat)
        case .ack(let ack):
            guard let index = outbox.firstIndex(where: { $0.id == ack.id }) else { return }
            let pending = outbox.remove(at: index)
            pending.waiter?.resume(returning: ack.seq)
        case .error(let error) where error.code == "broker_unavailable":
            // Pub/sub mode while Redis is unreachable: the message was refused, not lost; try again shortly
            // (the shard drops duplicates by (client, id), so resending everything unacknowledged is safe).
            scheduleResend()
        case .hello, .error:
            break
        }
    }

    private func scheduleResend() {
        guard resend == nil else { return }
        let delay = Duration.milliseconds(Int64.random(in: 300...1000))
        resend = Task {
            try? await Task.sleep(for: delay)
            self.resendOutbox()
        }
    }

    private func resendOutbox() {
        resend = nil
        guard !closed, let connection else { return }
        for pending in outbox {
            connection.send(text: ClientMessage.chat(message: pending.text, id: pending.id).encoded())
        }
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }
}

extension Duration {
    fileprivate var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}

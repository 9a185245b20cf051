import Histogram
import NIOCore

/// An error a workload ran into; the message is printed as is.
struct ProxyBenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Round-trip times of one measured window, in microseconds.
struct ProxyBenchLatency: Sendable {
    var p50: Double
    var p99: Double
    var p999: Double
    var count: UInt64

    init(_ histogram: Histogram<UInt64>) {
        count = histogram.totalCount
        p50 = count == 0 ? .nan : Double(histogram.valueAtPercentile(50)) / 1000
        p99 = count == 0 ? .nan : Double(histogram.valueAtPercentile(99)) / 1000
        p999 = count == 0 ? .nan : Double(histogram.valueAtPercentile(99.9)) / 1000
    }
}

/// What an echo driver saw between `beginWindow` and `endWindow`.
struct ProxyBenchWindow: Sendable {
    var seconds: Double
    var chats: Int
    /// Replies that were not chats (an `error` such as rate_limited): each one is a message that did not echo.
    var others: Int
    /// Connections that ended on their own during the run, and why the first one did.
    var failures: Int
    var firstFailure: String?
    var latency: ProxyBenchLatency
}

/// Drives the echo workload: `count` connections, each alone in its own room, each sending a chat (without `id`)
/// and timing the broadcast copy that comes back. Closed loop sends the next message when the reply arrives; paced
/// sends on a timer per connection regardless of replies (a fixed offered rate).
///
/// Confined to `loop`: every method must run there (callers use `loop.submit`).
final class ProxyBenchEchoDriver: ProxyBenchSocketDelegate, @unchecked Sendable {
    enum Pacing {
        case closedLoop
        /// One message per connection every interval.
        case interval(TimeAmount)
    }

    private let loop: any EventLoop
    private let endpoint: ProxyBenchEndpoint
    private let roomPrefix: String
    private let chatFrame: ByteBuffer
    private var sockets: [ProxyBenchSocket?] = []
    private var sentAt: [CircularBuffer<UInt64>] = []
    private var timers: [RepeatedTask] = []
    private var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three)
    private var pacing = Pacing.closedLoop
    private var sending = false
    private var stopped = false
    private var windowStart: UInt64 = 0
    private var chats = 0
    private var others = 0
    private var failures = 0
    private var firstFailure: String?
    // Opening.
    private var openPromise: EventLoopPromise<Void>?
    private var toOpen = 0
    private var launched = 0
    private var opened = 0
    /// Handshakes answered `503` (a shard's join-rate limit) and tried again after a second.
    private(set) var refusedAndRetried = 0

    init(loop: any EventLoop, endpoint: ProxyBenchEndpoint, roomPrefix: String, chatFrame: ByteBuffer) {
        self.loop = loop
        self.endpoint = endpoint
        self.roomPrefix = roomPrefix
        self.chatFrame = chatFrame
    }

    /// Opens `count` connections, at most `concurrency` handshakes at a time and, when `perSecond` is set, at most
    /// that many starts per second (below a shard's join-rate limit); fails on the first refusal other than 503.
    func open(count: Int, concurrency: Int, perSecond: Int? = nil,
              timeout: TimeAmount = .seconds(120)) -> EventLoopFuture<Void> {
        loop.assertInEventLoop()
        let promise = loop.makePromise(of: Void.self)
        openPromise = promise
        toOpen = count
        sockets = Array(repeating: nil, count: count)
        sentAt = Array(repeating: CircularBuffer(initialCapacity: 4), count: count)
        openStart = NIODeadline.now().uptimeNanoseconds
        openRate = perSecond
        if count == 0 { promise.succeed(()) }
        for _ in 0..<min(max(1, concurrency), count) { launchNext() }
        if perSecond != nil {
            // Starts held back by the pace are made up for on this tick.
            let pacer = loop.scheduleRepeatedTask(initialDelay: .milliseconds(10), delay: .milliseconds(10)) { [self] _ in
                while launched - opened - refusedPending < concurrency, mayLaunch() { launchNext() }
            }
            promise.futureResult.whenComplete { _ in pacer.cancel() }
        }
        let deadline = loop.scheduleTask(in: timeout) { [self] in
            failOpen("only \(opened) of \(count) connections opened within \(timeout.nanoseconds / 1_000_000_000) s")
        }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        return promise.futureResult
    }

    private var openStart: UInt64 = 0
    private var openRate: Int?
    private var refusedPending = 0

    private func mayLaunch() -> Bool {
        guard !stopped, launched < toOpen else { return false }
        guard let openRate else { return true }
        let elapsed = Double(NIODeadline.now().uptimeNanoseconds - openStart) / 1e9
        return Double(launched) < elapsed * Double(openRate) + 1
    }

    private func launchNext() {
        guard mayLaunch() else { return }
        let index = launched
        launched += 1
        launch(index)
    }

    private func launch(_ index: Int) {
        ProxyBenchSocket.open(index: index, endpoint: endpoint, path: "/rooms/\(roomPrefix)-\(index)?name=b",
                              chatFrame: chatFrame, loop: loop, delegate: self)
    }

    private func failOpen(_ reason: String) {
        guard let promise = openPromise else { return }
        openPromise = nil
        promise.fail(ProxyBenchError(reason))
    }

    /// Starts sending on every open connection.
    func start(_ pacing: Pacing) {
        loop.assertInEventLoop()
        self.pacing = pacing
        sending = true
        switch pacing {
        case .closedLoop:
            for socket in sockets { socket.map(send) }
        case .interval(let interval):
            let count = max(1, sockets.count)
            for index in sockets.indices where sockets[index] != nil {
                // Spread the first sends over one interval so the offered load is smooth, not a burst per tick.
                let offset = TimeAmount.nanoseconds(interval.nanoseconds * Int64(index) / Int64(count))
                timers.append(loop.scheduleRepeatedTask(initialDelay: offset, delay: interval) { [self] _ in
                    if sending, let socket = sockets[index] { send(socket) }
                })
            }
        }
    }

    private func send(_ socket: ProxyBenchSocket) {
        sentAt[socket.index].append(NIODeadline.now().uptimeNanoseconds)
        socket.sendChat()
    }

    /// Forgets everything measured so far (warm-up) and starts the window.
    func beginWindow() {
        loop.assertInEventLoop()
        histogram.reset()
        chats = 0
        others = 0
        windowStart = NIODeadline.now().uptimeNanoseconds
    }

    /// The window so far.
    func endWindow() -> ProxyBenchWindow {
        loop.assertInEventLoop()
        let seconds = Double(NIODeadline.now().uptimeNanoseconds - windowStart) / 1e9
        return ProxyBenchWindow(seconds: seconds, chats: chats, others: others, failures: failures,
                                firstFailure: firstFailure, latency: ProxyBenchLatency(histogram))
    }

    /// Stops sending and closes every connection; succeeds when all are closed.
    func stop() -> EventLoopFuture<Void> {
        loop.assertInEventLoop()
        stopped = true
        sending = false
        timers.forEach { $0.cancel() }
        timers = []
        failOpen("stopped")
        let closed = sockets.compactMap { socket -> EventLoopFuture<Void>? in
            guard let socket, let channel = socket.channel else { return nil }
            socket.close()
            return channel.closeFuture
        }
        sockets = []
        return EventLoopFuture.andAllComplete(closed, on: loop)
    }

    // MARK: - Socket events

    func socketOpened(_ socket: ProxyBenchSocket) {
        guard !stopped, socket.index < sockets.count else {
            // Opened after a failure or stop ended the run: nobody wants it.
            socket.close()
            return
        }
        sockets[socket.index] = socket
        opened += 1
        if opened == toOpen, let promise = openPromise {
            openPromise = nil
            promise.succeed(())
        } else {
            launchNext()
        }
    }

    func socketReceived(_ socket: ProxyBenchSocket, chat: Bool) {
        let sent = sentAt[socket.index].popFirst()
        if chat {
            chats += 1
            if let sent, sent >= windowStart || windowStart == 0 {
                _ = histogram.record(NIODeadline.now().uptimeNanoseconds &- sent)
            }
        } else {
            others += 1
        }
        if sending, case .closedLoop = pacing { send(socket) }
    }

    func socketFailed(_ socket: ProxyBenchSocket, reason: String) {
        if openPromise != nil, !stopped, reason.hasPrefix("handshake refused: HTTP/1.1 503"), refusedAndRetried < 100_000 {
            // Overload protection (Retry-After: 1), not a failure of what is measured here: try again.
            refusedAndRetried += 1
            refusedPending += 1
            let index = socket.index
            loop.scheduleTask(in: .seconds(1)) { [self] in
                refusedPending -= 1
                if !stopped { launch(index) }
            }
            return
        }
        failures += 1
        if firstFailure == nil { firstFailure = reason }
        if socket.index < sockets.count { sockets[socket.index] = nil }
        failOpen("connection \(socket.index) failed while opening: \(reason)")
    }
}

/// What the handshake workload measured.
struct ProxyBenchHandshakes: Sendable {
    var seconds: Double
    var completed: Int
    var failures: Int
    var firstFailure: String?
    var perSecond: Double { seconds > 0 ? Double(completed) / seconds : 0 }
}

/// Connection setup rate: `total` WebSocket handshakes (each until its `hello` arrives, then closed), `inFlight`
/// at a time, each in its own room. Confined to `loop`.
final class ProxyBenchHandshakeDriver: ProxyBenchSocketDelegate, @unchecked Sendable {
    private let loop: any EventLoop
    private let endpoint: ProxyBenchEndpoint
    private let roomPrefix: String
    private let chatFrame = ProxyBenchSocket.chatFrame(messageBytes: 1)
    private var promise: EventLoopPromise<ProxyBenchHandshakes>?
    private var total = 0
    private var launched = 0
    private var completed = 0
    private var failures = 0
    private var firstFailure: String?
    private var start: UInt64 = 0

    init(loop: any EventLoop, endpoint: ProxyBenchEndpoint, roomPrefix: String) {
        self.loop = loop
        self.endpoint = endpoint
        self.roomPrefix = roomPrefix
    }

    func run(total: Int, inFlight: Int, timeout: TimeAmount = .seconds(120)) -> EventLoopFuture<ProxyBenchHandshakes> {
        loop.assertInEventLoop()
        let promise = loop.makePromise(of: ProxyBenchHandshakes.self)
        self.promise = promise
        self.total = total
        start = NIODeadline.now().uptimeNanoseconds
        for _ in 0..<min(max(1, inFlight), total) { launchNext() }
        let deadline = loop.scheduleTask(in: timeout) { [self] in
            firstFailure = firstFailure ?? "timed out"
            finish()
        }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        return promise.futureResult
    }

    private func launchNext() {
        guard launched < total else { return }
        let index = launched
        launched += 1
        ProxyBenchSocket.open(index: index, endpoint: endpoint, path: "/rooms/\(roomPrefix)-\(index)?name=b",
                              chatFrame: chatFrame, loop: loop, delegate: self)
    }

    private func settled() {
        guard promise != nil else { return }  // finished (timed out): launch nothing more
        if completed + failures == total { finish() } else { launchNext() }
    }

    private func finish() {
        guard let promise else { return }
        self.promise = nil
        let seconds = Double(NIODeadline.now().uptimeNanoseconds - start) / 1e9
        promise.succeed(.init(seconds: seconds, completed: completed, failures: failures, firstFailure: firstFailure))
    }

    func socketOpened(_ socket: ProxyBenchSocket) {
        completed += 1
        socket.close()
        settled()
    }

    func socketReceived(_ socket: ProxyBenchSocket, chat: Bool) {}

    func socketFailed(_ socket: ProxyBenchSocket, reason: String) {
        failures += 1
        if firstFailure == nil { firstFailure = reason }
        settled()
    }
}

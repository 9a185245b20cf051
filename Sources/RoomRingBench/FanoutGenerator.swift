#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Histogram
import NIOCore
import NIOPosix

/// One step of the fanout workload: `rooms × members` connections, one sender per room, `rate` chats per second in
/// total, paced evenly.
struct FanoutWorkload: Sendable {
    var rooms: Int
    var members: Int
    /// Offered chats per second over all rooms.
    var rate: Int
    var warmup: Double
    var duration: Double
    /// Length of each chat's `message` text.
    var messageBytes: Int
}

/// What one step measured.
public struct FanoutSample: Sendable {
    /// Chats the generator sent during the window, per second.
    public var sentPerSecond: Double
    /// Chat frames received during the window, per second, over all members.
    public var deliveredPerSecond: Double
    /// Delivery latency percentiles in milliseconds (send timestamp to receipt, over every member).
    public var p50: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    /// Server CPU seconds (user + system) during the window.
    public var serverCPUSeconds: Double?
    /// Share of the server's CPU time spent in the kernel, in percent.
    public var serverSystemPercent: Double?
    /// Generator CPU during the window, in percent of one core.
    public var generatorCPUPercent: Double?
    /// CPU time other processes took on the server's and the generator's cores during the window, in percent of
    /// one core (busy time from `/proc/stat` minus the server's or the generator's own); nil when not pinned.
    public var foreignServerCorePercent: Double?
    public var foreignGeneratorCorePercent: Double?
    /// The busier of the two: what other processes took from the benchmark's cores.
    public var foreignLoadPercent: Double? {
        foreignServerCorePercent.flatMap { a in foreignGeneratorCorePercent.map { Swift.max(a, $0) } }
    }
    /// Close frames, error frames and dropped connections seen during the run.
    public var problems: Int
    /// The first of those, verbatim.
    public var firstProblem: String?

    /// Broker (Redis) CPU seconds during the window, when there is one.
    public var brokerCPUSeconds: Double?

    /// Broker CPU seconds per 100,000 delivered messages.
    public var brokerCPUPer100k: Double? {
        guard let brokerCPUSeconds, deliveredPerSecond > 0 else { return nil }
        return brokerCPUSeconds / (deliveredPerSecond * windowSeconds) * 100_000
    }

    /// Server CPU seconds per 100,000 delivered messages.
    public var serverCPUPer100k: Double? {
        guard let serverCPUSeconds, deliveredPerSecond > 0 else { return nil }
        return serverCPUSeconds / (deliveredPerSecond * windowSeconds) * 100_000
    }

    /// The latency distribution: milliseconds at each of ``FanoutSample/cdfPercentiles``.
    public var cdf: [Double] = []

    /// Where the distribution is sampled for CDF charts, dense in the tail.
    public static let cdfPercentiles: [Double] = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99]

    var windowSeconds: Double = 0
}

/// Drives one workload step from the generator's single event loop.
enum FanoutGenerator {
    /// Connects every member, paces the senders, and measures one window.
    /// - Parameters:
    ///   - serverPID: the server process, for its CPU time.
    ///   - progress: receives short status lines.
    static func run(_ workload: FanoutWorkload, host: String, port: Int, serverPID: pid_t,
                    cores: (server: Int, generator: Int)?, loop: any EventLoop,
                    progress: @Sendable (String) -> Void) async throws -> FanoutSample {
        try await run(workload, host: host, route: { _, _ in port }, serverPIDs: [serverPID], cores: cores,
                      loop: loop, progress: progress)
    }

    /// Connects every member, paces the senders, and measures one window, against several server processes.
    /// - Parameters:
    ///   - route: the port member `member` of room `room` connects to.
    ///   - serverPIDs: the server processes, whose CPU time is added up.
    ///   - brokerPID: a broker (Redis) whose CPU time is reported apart.
    static func run(_ workload: FanoutWorkload, host: String, route: @escaping @Sendable (Int, Int) -> Int,
                    serverPIDs: [pid_t], brokerPID: pid_t? = nil,
                    cores: (server: Int, generator: Int)?, loop: any EventLoop,
                    progress: @Sendable (String) -> Void) async throws -> FanoutSample {
        let recorder = try await loop.submit { NIOLoopBound(FanoutRecorder(), eventLoop: loop) }.get()
        let total = workload.rooms * workload.members
        let started = ContinuousClock.now
        let channels = try await connectAll(workload, host: host, route: route, loop: loop, recorder: recorder)
        let pacer = try await loop.submit {
            let senders = (0..<workload.rooms).map { channels[$0 * workload.members] }
            return NIOLoopBound(FanoutPacer(senders: senders, rate: Double(workload.rate),
                                            messageBytes: workload.messageBytes), eventLoop: loop)
        }.get()
        do {
            try await waitForHellos(total, loop: loop, recorder: recorder)
            progress("\(total) members joined in \(Self.format(ContinuousClock.now - started))")
            let sample = try await measure(workload, serverPIDs: serverPIDs, brokerPID: brokerPID, cores: cores,
                                           loop: loop, recorder: recorder, pacer: pacer)
            try await closeAll(channels, loop: loop, recorder: recorder, pacer: pacer)
            return sample
        } catch {
            try? await closeAll(channels, loop: loop, recorder: recorder, pacer: pacer)
            throw error
        }
    }

    /// Starts the pacer, opens the window after the warm-up and closes it `duration` seconds later.
    private static func measure(_ workload: FanoutWorkload, serverPIDs: [pid_t], brokerPID: pid_t?,
                                cores: (server: Int, generator: Int)?,
                                loop: any EventLoop,
                                recorder: NIOLoopBound<FanoutRecorder>,
                                pacer: NIOLoopBound<FanoutPacer>) async throws -> FanoutSample {
        try await loop.submit { pacer.value.start(loop: loop, pacer: pacer) }.get()
        let open = try await loop.scheduleTask(in: .nanoseconds(Int64(workload.warmup * 1e9))) {
            let recorder = recorder.value
            recorder.measuring = true
            recorder.delivered = 0
            return Snapshot(wall: NIODeadline.now().uptimeNanoseconds, sent: pacer.value.sent,
                            server: FanoutCPU.times(pids: serverPIDs), broker: brokerPID.flatMap { FanoutCPU.seconds(pid: $0) },
                            generator: FanoutCPU.seconds(pid: getpid()), cores: FanoutCPU.busyPerCore())
        }.futureResult.get()
        let (close, sample) = try await loop.scheduleTask(in: .nanoseconds(Int64(workload.duration * 1e9))) {
            let recorder = recorder.value
            recorder.measuring = false
            pacer.value.stop()
            let close = Snapshot(wall: NIODeadline.now().uptimeNanoseconds, sent: pacer.value.sent,
                                 server: FanoutCPU.times(pids: serverPIDs),
                                 broker: brokerPID.flatMap { FanoutCPU.seconds(pid: $0) },
                                 generator: FanoutCPU.seconds(pid: getpid()), cores: FanoutCPU.busyPerCore())
            let h = recorder.histogram
            let ms = { (percentile: Double) in Double(h.valueAtPercentile(percentile)) / 1000 }
            var sample = FanoutSample(
                sentPerSecond: 0, deliveredPerSecond: Double(recorder.delivered),
                p50: ms(50), p99: ms(99), p999: ms(99.9), max: Double(h.max) / 1000,
                serverCPUSeconds: nil, generatorCPUPercent: nil,
                problems: recorder.errors + recorder.closes + recorder.drops, firstProblem: recorder.firstProblem)
            sample.cdf = FanoutSample.cdfPercentiles.map { $0 == 0 ? Double(h.min) / 1000 : ms($0) }
            return (close, sample)
        }.futureResult.get()

        var result = sample
        let window = Double(close.wall - open.wall) / 1e9
        result.windowSeconds = window
        result.sentPerSecond = Double(close.sent - open.sent) / window
        result.deliveredPerSecond = sample.deliveredPerSecond / window
        if let before = open.server, let after = close.server {
            let total = (after.user + after.system) - (before.user + before.system)
            result.serverCPUSeconds = total
            if total > 0 { result.serverSystemPercent = (after.system - before.system) / total * 100 }
        }
        if let before = open.generator, let after = close.generator {
            result.generatorCPUPercent = (after - before) / window * 100
        }
        if let before = open.broker, let after = close.broker { result.brokerCPUSeconds = after - before }
        if let cores, let serverCPU = result.serverCPUSeconds.map({ $0 + (result.brokerCPUSeconds ?? 0) }), let generatorCPU = result.generatorCPUPercent,
           let s0 = open.cores[cores.server], let s1 = close.cores[cores.server],
           let g0 = open.cores[cores.generator], let g1 = close.cores[cores.generator]
        {
            result.foreignServerCorePercent = max(0, ((s1 - s0) - serverCPU) / window * 100)
            result.foreignGeneratorCorePercent = max(0, (g1 - g0) / window * 100 - generatorCPU)
        }
        return result
    }

    private struct Snapshot: Sendable {
        var wall: UInt64
        var sent: Int
        var server: (user: Double, system: Double)?
        var broker: Double?
        var generator: Double?
        var cores: [Int: Double]
    }

    /// Opens every member's connection, 64 handshakes in flight; a `503` (the shard's join rate limit) is retried.
    private static func connectAll(_ workload: FanoutWorkload, host: String, route: @escaping @Sendable (Int, Int) -> Int,
                                   loop: any EventLoop,
                                   recorder: NIOLoopBound<FanoutRecorder>) async throws -> [any Channel] {
        let total = workload.rooms * workload.members
        return try await withThrowingTaskGroup(of: (Int, any Channel).self) { group in
            var channels: [(any Channel)?] = Array(repeating: nil, count: total)
            var next = 0
            func add() {
                let index = next
                next += 1
                let path = "/rooms/bench-\(index / workload.members)?name=m\(index % workload.members)"
                let port = route(index / workload.members, index % workload.members)
                group.addTask {
                    (index, try await connect(host: host, port: port, path: path, loop: loop, recorder: recorder))
                }
            }
            while next < min(total, 64) { add() }
            do {
                while let (index, channel) = try await group.next() {
                    channels[index] = channel
                    if next < total { add() }
                }
            } catch {
                for case let channel? in channels { channel.close(promise: nil) }
                throw error
            }
            return channels.map { $0! }
        }
    }

    private static func connect(host: String, port: Int, path: String, loop: any EventLoop,
                                recorder: NIOLoopBound<FanoutRecorder>) async throws -> any Channel {
        var attempt = 0
        while true {
            let upgraded = loop.makePromise(of: Void.self)
            let channel = try await ClientBootstrap(group: loop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = FanoutClientHandler(recorder: recorder.value, host: host, port: port, path: path,
                                                          upgraded: upgraded)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: host, port: port).get()
            do {
                try await upgraded.futureResult.get()
                return channel
            } catch let refused as FanoutHandshakeRefused where refused.status == 503 && attempt < 100 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    private static func waitForHellos(_ total: Int, loop: any EventLoop,
                                      recorder: NIOLoopBound<FanoutRecorder>) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let hellos = try await loop.submit { recorder.value.hellos }.get()
            if hellos >= total { return }
            guard ContinuousClock.now < deadline else { throw FanoutError("only \(hellos) of \(total) members got hello") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private static func closeAll(_ channels: [any Channel], loop: any EventLoop, recorder: NIOLoopBound<FanoutRecorder>,
                                 pacer: NIOLoopBound<FanoutPacer>) async throws {
        try await loop.submit {
            pacer.value.stop()
            recorder.value.tearingDown = true
        }.get()
        for channel in channels { channel.close(promise: nil) }
    }

    static func format(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds < 1 ? "\(Int(seconds * 1000)) ms" : "\((seconds * 10).rounded() / 10) s"
    }
}

/// Sends what is due every tick: message `k` goes out at `k / rate` seconds after the start, to room `k mod rooms`.
/// Lives on the generator's event loop.
final class FanoutPacer {
    private let senders: [any Channel]
    private let rate: Double
    private var template: [UInt8]
    private let stampOffset: Int
    private var start: UInt64 = 0
    private var key: UInt32 = 0x9E37_79B9
    private(set) var sent = 0
    private var task: RepeatedTask?

    /// Digits of the send timestamp (monotonic nanoseconds), zero-padded so every message has the same length.
    static let stampDigits = 16

    init(senders: [any Channel], rate: Double, messageBytes: Int) {
        self.senders = senders
        self.rate = rate
        let prefix = Array(#"{"type":"chat","payload":{"message":""#.utf8)
        let padding = max(0, messageBytes - Self.stampDigits - 1)
        let message = Array(repeating: UInt8(ascii: "0"), count: Self.stampDigits) + [UInt8(ascii: " ")]
            + (0..<padding).map { UInt8(ascii: "a") + UInt8($0 % 26) }
        self.template = prefix + message + Array(#""}}"#.utf8)
        self.stampOffset = prefix.count
    }

    /// Starts ticking every millisecond; `pacer` is this pacer, bound to `loop`.
    func start(loop: any EventLoop, pacer: NIOLoopBound<FanoutPacer>) {
        start = NIODeadline.now().uptimeNanoseconds
        task = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { _ in pacer.value.tick() }
    }

    func tick() {
        let now = NIODeadline.now().uptimeNanoseconds
        let due = Int(Double(now - start) * rate / 1e9)
        guard due > sent else { return }
        var stamp = now
        for i in stride(from: stampOffset + Self.stampDigits - 1, through: stampOffset, by: -1) {
            template[i] = UInt8(ascii: "0") + UInt8(stamp % 10)
            stamp /= 10
        }
        while sent < due {
            // xorshift32: a fresh masking key per frame, as RFC 6455 asks of clients.
            key ^= key << 13
            key ^= key >> 17
            key ^= key << 5
            let frame = template.withUnsafeBytes { FanoutClientHandler.frame(opcode: 0x1, payload: $0, key: key) }
            senders[sent % senders.count].writeAndFlush(frame, promise: nil)
            sent += 1
        }
    }

    func stop() {
        task?.cancel()
        task = nil
    }
}

@available(*, unavailable)
extension FanoutPacer: Sendable {}

/// A benchmark failure with a message for the user.
public struct FanoutError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

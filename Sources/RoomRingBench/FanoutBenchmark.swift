#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import NIOPosix
import RoomRingSpawn

/// A server the fanout benchmark measures.
public enum FanoutTarget: String, CaseIterable, Sendable {
    /// One RoomRing shard (`roomring shard --event-loops 1`), a child of this binary.
    case roomring
    /// The Node.js `ws` room server in this module's resources (Debian's `node-ws`).
    case node
}

/// How `roomring bench fanout` runs.
public struct FanoutOptions: Sendable {
    /// Rooms; each has one sender.
    public var rooms = 100
    /// Connections per room, the sender included; each receives every chat of its room.
    public var members = 20
    /// Offered chats per second over all rooms, one step each.
    public var rates = [2000, 4000, 5000, 6000, 8000, 12000, 14000, 16000]
    /// Seconds measured per step.
    public var duration = 5.0
    /// Seconds of sending before the window opens.
    public var warmup = 1.0
    /// Repetitions; the report takes medians over them.
    public var repeats = 3
    /// Length of each chat's `message` text (the send timestamp and padding).
    public var messageBytes = 64
    /// Servers to compare, interleaved in this order within each repetition.
    public var targets: [FanoutTarget] = [.roomring, .node]
    /// CPU the servers are pinned to, nil to leave them unpinned.
    public var serverCPU: Int? = 0
    /// CPU the generator is pinned to, nil to leave it unpinned.
    public var generatorCPU: Int? = 1
    /// Latency bound of the sustained rate, in milliseconds (p99).
    public var p99LimitMs = 50.0
    /// Share of `offered × members` that must be delivered for a rate to count as sustained.
    public var deliveredFraction = 0.95
    /// A step during which other processes took more than this share of either benchmark core (percent) is measured
    /// again, at most ``noisyRetries`` times; the last attempt counts.
    public var maxOtherLoad = 15.0
    public var noisyRetries = 3

    /// The defaults above.
    public init() {}
}

/// `roomring bench fanout`: R rooms × M members, one sender per room, a swept offered rate, against one RoomRing shard
/// and a Node `ws` server started in the same run, each pinned to its own core away from the generator.
public enum FanoutBenchmark {
    /// Runs every step and returns the report. `progress` receives a line per event while it runs.
    /// - Throws: ``FanoutError`` when nothing can be measured (no target can start, limits too low).
    public static func run(_ options: FanoutOptions, progress: @escaping @Sendable (String) -> Void) async throws
        -> FanoutReport
    {
        var options = options
        var notes: [String] = []
        if options.targets.contains(.node), let problem = FanoutTools.nodeProblem() {
            options.targets.removeAll { $0 == .node }
            notes.append("Node baseline skipped: \(problem).")
            progress("Node baseline skipped: \(problem)")
        }
        guard !options.targets.isEmpty else { throw FanoutError("no target left to measure") }
        let connections = options.rooms * options.members
        let files = FanoutAffinity.raiseFileLimit()
        guard files > connections + 256 else {
            throw FanoutError("\(connections) connections need more open files than the limit of \(files) (ulimit -n)")
        }
        pinGenerator(&options, notes: &notes, progress: progress)

        // One event loop thread: it does all the generator's work, on the generator's core.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let report = try await runSteps(options, notes: notes, group: group, progress: progress)
            try? await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func runSteps(_ options: FanoutOptions, notes: [String], group: MultiThreadedEventLoopGroup,
                                 progress: @escaping @Sendable (String) -> Void) async throws -> FanoutReport {
        var notes = notes
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("roomring-fanout-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        var results: [FanoutResult] = []
        let steps = options.repeats * options.rates.count * options.targets.count
        var step = 0
        for repetition in 1...options.repeats {
            for rate in options.rates {
                for target in options.targets {
                    step += 1
                    let label = "[\(step)/\(steps)] rep \(repetition) \(target.rawValue) @ \(rate)/s"
                    let workload = FanoutWorkload(rooms: options.rooms, members: options.members, rate: rate,
                                                  warmup: options.warmup, duration: options.duration,
                                                  messageBytes: options.messageBytes)
                    var attempt = 0
                    while true {
                        do {
                            let sample = try await runStep(target, workload, options: options, scratch: scratch,
                                                           group: group) { progress("\(label): \($0)") }
                            progress("\(label): " + FanoutReport.stepLine(sample, expected: Double(rate * options.members)))
                            if let other = sample.foreignLoadPercent, other > options.maxOtherLoad,
                               attempt < options.noisyRetries
                            {
                                attempt += 1
                                progress("\(label): other processes took \(Int(other.rounded())) % of a benchmark core; "
                                    + "measuring again in \(5 * attempt) s (\(attempt)/\(options.noisyRetries))")
                                try await Task.sleep(for: .seconds(5 * attempt))
                                continue
                            }
                            results.append(FanoutResult(target: target, rate: rate, repetition: repetition, sample: sample))
                        } catch {
                            results.append(FanoutResult(target: target, rate: rate, repetition: repetition, sample: nil))
                            notes.append("\(label) failed: \(error)")
                            progress("\(label): FAILED: \(error)")
                        }
                        break
                    }
                }
            }
        }
        return FanoutReport(options: options, results: results, notes: notes)
    }

    /// Pins this process (every thread it has now; the event loop thread started later inherits it) to the
    /// generator CPU, or drops pinning when the machine does not have both CPUs.
    private static func pinGenerator(_ options: inout FanoutOptions, notes: inout [String],
                                     progress: @Sendable (String) -> Void) {
        let allowed = FanoutAffinity.allowed()
        let wanted = [options.serverCPU, options.generatorCPU].compactMap { $0 }
        guard wanted.allSatisfy(allowed.contains), Set(wanted).count == wanted.count else {
            let server = options.serverCPU.map(String.init) ?? "-", generator = options.generatorCPU.map(String.init) ?? "-"
            let note = "CPU pinning off: this process may use CPUs \(allowed) (wanted server \(server), generator "
                + "\(generator)); results measure the scheduler too."
            notes.append(note)
            progress(note)
            options.serverCPU = nil
            options.generatorCPU = nil
            return
        }
        if let cpu = options.generatorCPU, !FanoutAffinity.pin(pid: getpid(), cpu: cpu) {
            notes.append("could not pin the generator to CPU \(cpu)")
        }
        if FanoutTools.find("taskset") == nil {
            notes.append("`taskset` not found: servers are pinned with sched_setaffinity once they are ready.")
        }
    }

    /// Starts the target, runs the workload against it, and stops it (also on error).
    private static func runStep(_ target: FanoutTarget, _ workload: FanoutWorkload, options: FanoutOptions, scratch: URL,
                                group: MultiThreadedEventLoopGroup,
                                progress: @escaping @Sendable (String) -> Void) async throws -> FanoutSample {
        let server = try await start(target, options: options, scratch: scratch)
        do {
            try await server.waitReady(group: group, cpu: options.serverCPU)
            let cores = options.serverCPU.flatMap { s in options.generatorCPU.map { (server: s, generator: $0) } }
            let sample = try await FanoutGenerator.run(workload, host: "127.0.0.1", port: server.port, serverPID: server.pid,
                                                       cores: cores, loop: group.next(), progress: progress)
            // A server that died during the window measured nothing useful.
            guard server.isRunning else { throw FanoutError("\(server.name) exited during the run") }
            await server.stop()
            return sample
        } catch {
            await server.stop()
            throw error
        }
    }

    private static func start(_ target: FanoutTarget, options: FanoutOptions, scratch: URL) async throws
        -> FanoutServerProcess
    {
        let (port, admin) = try LoopbackPort.freePair()
        let parent = ["ROOMRING_PARENT_PID": String(getpid())]
        switch target {
        case .roomring:
            let ring = scratch.appendingPathComponent("ring.json")
            let document = """
                {"epoch": 1, "vnodes": 160, "shards": [{"id": "s1", "address": "127.0.0.1:\(port)", \
                "admin": "127.0.0.1:\(admin)", "weight": 1, "state": "active"}]}
                """
            try Data(document.utf8).write(to: ring)
            return try FanoutServerProcess.launch(
                name: "roomring shard", port: port, executable: FanoutTools.current,
                arguments: ["shard", "--id", "s1", "--ring", ring.path, "--port", String(port),
                            "--admin-port", String(admin),
                            "--rate", "1000000", "--burst", "1000000", "--event-loops", "1", "--log-level", "warning"],
                environment: parent, cpu: options.serverCPU)
        case .node:
            guard let node = FanoutTools.find("node"), let script = FanoutTools.nodeServerScript() else {
                throw FanoutError("node or its server script disappeared")
            }
            return try FanoutServerProcess.launch(name: "node ws server", port: port, executable: node,
                                            arguments: [script, String(port), String(getpid())],
                                            environment: ["NODE_PATH": FanoutTools.nodePath], cpu: options.serverCPU)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import NIOPosix
import RoomRingClient

/// A server under test, started as a child process, pinned to one CPU, and killed by its PID when done.
final class FanoutServerProcess: Sendable {
    let name: String
    let port: Int
    /// Its process id (the server itself: `taskset` execs it in place).
    let pid: pid_t
    private let process: Process

    private init(name: String, port: Int, process: Process) {
        self.name = name
        self.port = port
        self.pid = process.processIdentifier
        self.process = process
    }

    /// Starts `executable arguments…`, under `taskset -c cpu` when `taskset` exists and `cpu` is given.
    static func launch(name: String, port: Int, executable: String, arguments: [String], environment: [String: String],
                       cpu: Int?) throws -> FanoutServerProcess {
        let process = Process()
        if let cpu, let taskset = FanoutTools.find("taskset") {
            process.executableURL = URL(fileURLWithPath: taskset)
            process.arguments = ["-c", String(cpu), executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return FanoutServerProcess(name: name, port: port, process: process)
    }

    /// Whether the child is still running.
    var isRunning: Bool { process.isRunning }

    /// Polls until a WebSocket handshake to `/rooms/<probeRoom>` succeeds (30 s at most); pins the server's
    /// threads to `cpu` afterwards when `taskset` was not there to do it.
    func waitReady(group: any EventLoopGroup, cpu: Int?) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        var lastError = "no answer"
        while ContinuousClock.now < deadline {
            guard isRunning else {
                throw FanoutError("\(name) exited with status \(process.terminationStatus) while starting")
            }
            do {
                let probe = try await WebSocketConnection.connect(host: "127.0.0.1", port: port,
                                                                  path: "/rooms/ready-probe?name=probe", group: group)
                await probe.close()
                if let cpu, FanoutTools.find("taskset") == nil { FanoutAffinity.pin(pid: pid, cpu: cpu) }
                return
            } catch {
                lastError = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FanoutError("\(name) did not accept a WebSocket on port \(port) within 30 s (\(lastError))")
    }

    /// SIGTERM, then SIGKILL after 2 s; returns once the child is gone.
    func stop() async {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(2)
        while isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if isRunning { kill(pid, SIGKILL) }
        while isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }
}

/// CPU time from `/proc/<pid>/stat`.
enum FanoutCPU {
    fileprivate static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// User plus system CPU seconds of every thread of `pid`; nil without `/proc`.
    static func seconds(pid: pid_t) -> Double? {
        times(pid: pid).map { $0.user + $0.system }
    }

    /// User and system CPU seconds of several processes added up; nil when any cannot be read.
    static func times(pids: [pid_t]) -> (user: Double, system: Double)? {
        var total = (user: 0.0, system: 0.0)
        for pid in pids {
            guard let one = times(pid: pid) else { return nil }
            total.user += one.user
            total.system += one.system
        }
        return total
    }

    /// User and system CPU seconds of every thread of `pid`; nil without `/proc`.
    static func times(pid: pid_t) -> (user: Double, system: Double)? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        // Fields after the command name (which may contain spaces) start at `state`; utime and stime are the
        // 12th and 13th of those (fields 14 and 15 of proc(5)).
        guard let close = buffer[0..<count].lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = buffer[(close + 2)..<count].split(separator: UInt8(ascii: " "))
        guard fields.count > 12, let user = Double(String(decoding: fields[11], as: UTF8.self)),
              let system = Double(String(decoding: fields[12], as: UTF8.self))
        else { return nil }
        return (user / ticksPerSecond, system / ticksPerSecond)
    }
}

extension FanoutCPU {
    /// Busy seconds (everything but idle and iowait) of each CPU since boot, from `/proc/stat`, by CPU number.
    static func busyPerCore() -> [Int: Double] {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return [:] }
        var result: [Int: Double] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("cpu") && !line.hasPrefix("cpu ") {
            let fields = line.split(separator: " ")
            guard let cpu = Int(fields[0].dropFirst(3)) else { continue }
            let ticks = fields.dropFirst().compactMap { Double($0) }
            guard ticks.count >= 8 else { continue }
            // user nice system idle iowait irq softirq steal
            result[cpu] = (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]) / ticksPerSecond
        }
        return result
    }
}

/// Pins threads to one CPU with `sched_setaffinity` (looked up with `dlsym`: Swift's Glibc module leaves out the
/// GNU extensions).
enum FanoutAffinity {
    private typealias AffinityCall = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
    /// A 1024-CPU mask, the size of glibc's `cpu_set_t`.
    private static let maskBytes = 128

    private static func call(_ name: String) -> AffinityCall? {
        #if os(Linux)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(symbol, to: AffinityCall.self)
        #else
        return nil
        #endif
    }

    /// The CPUs this process may run on (empty when that cannot be asked).
    static func allowed() -> [Int] {
        guard let get = call("sched_getaffinity") else { return [] }
        var mask = [UInt8](repeating: 0, count: maskBytes)
        guard mask.withUnsafeMutableBytes({ get(0, maskBytes, $0.baseAddress!) }) == 0 else { return [] }
        return (0..<(maskBytes * 8)).filter { mask[$0 / 8] & (1 << ($0 % 8)) != 0 }
    }

    /// Pins every existing thread of `pid` to `cpu`; threads they start later inherit it.
    @discardableResult
    static func pin(pid: pid_t, cpu: Int) -> Bool {
        guard let set = call("sched_setaffinity"), cpu >= 0, cpu < maskBytes * 8 else { return false }
        var mask = [UInt8](repeating: 0, count: maskBytes)
        mask[cpu / 8] = 1 << (cpu % 8)
        let tasks = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? ["\(pid)"])
            .compactMap { pid_t($0) }
        var ok = !tasks.isEmpty
        for task in tasks where mask.withUnsafeMutableBytes({ set(task, maskBytes, $0.baseAddress!) }) != 0 { ok = false }
        return ok
    }

    /// Raises the open-file limit to the hard limit; returns the new soft limit.
    static func raiseFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(clamping: limit.rlim_cur)
    }
}

/// Finds programs and the pieces of the baselines.
enum FanoutTools {
    /// The `NODE_PATH` where Debian installs Node modules such as `node-ws`.
    static let debianNodePath = "/usr/share/nodejs:/usr/lib/nodejs"

    /// `name` resolved through `$PATH`.
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    /// This binary (so the shard child runs the same build as the generator).
    static var current: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The Node baseline's script, shipped as a resource of this module.
    static func nodeServerScript() -> String? {
        Bundle.module.url(forResource: "Resources/node-room-server", withExtension: "js")?.path
            ?? Bundle.module.url(forResource: "node-room-server", withExtension: "js")?.path
    }

    /// Why the Node baseline cannot run here, or nil when `node` and its `ws` module are present.
    static func nodeProblem() -> String? {
        guard let node = find("node") else { return "`node` is not on PATH (Debian: apt install nodejs node-ws)" }
        guard nodeServerScript() != nil else { return "node-room-server.js is missing from the RoomRingBench resources" }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: node)
        check.arguments = ["-e", "require('ws')"]
        check.environment = ProcessInfo.processInfo.environment.merging(["NODE_PATH": nodePath]) { $1 }
        check.standardOutput = FileHandle.nullDevice
        check.standardError = FileHandle.nullDevice
        do { try check.run() } catch { return "`node` could not be started: \(error)" }
        check.waitUntilExit()
        return check.terminationStatus == 0
            ? nil : "Node's `ws` module is not installed (Debian: apt install node-ws; looked in NODE_PATH=\(nodePath))"
    }

    /// Debian's module directories, then whatever `NODE_PATH` already says.
    static var nodePath: String {
        let existing = ProcessInfo.processInfo.environment["NODE_PATH"].map { ":" + $0 } ?? ""
        return debianNodePath + existing
    }
}

import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A server process the benchmark started (pinned with `taskset`), stopped by its PID.
final class ProxyBenchProcess: Sendable {
    let name: String
    let pid: pid_t
    let logPath: String
    private let process: Process

    private init(name: String, process: Process, logPath: String) {
        self.name = name
        self.process = process
        self.pid = process.processIdentifier
        self.logPath = logPath
    }

    /// Starts `arguments` pinned to `cpu` (nil: not pinned), stdout and stderr into `logPath`.
    /// `nice` (when not 0) is applied through `nice -n`, so every thread of the server inherits it.
    static func start(name: String, arguments: [String], cpu: Int?, nice: Int = 0, environment: [String: String] = [:],
                      logPath: String) throws -> ProxyBenchProcess {
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        var command = arguments
        if let cpu { command = [ProxyBenchSystem.tasksetPath, "-c", String(cpu)] + command }
        if nice != 0 { command = [ProxyBenchSystem.nicePath, "-n", String(nice)] + command }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
        let started = ProxyBenchProcess(name: name, process: process, logPath: logPath)
        ProxyBenchChildren.shared.add(started.pid)
        return started
    }

    var isRunning: Bool { process.isRunning }

    /// The last lines of the process's log, for error messages.
    func logTail(lines: Int = 8) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).map { "    \(name): \($0)" }.joined(separator: "\n")
    }

    /// SIGTERM, then SIGKILL if it is still running after `grace`.
    func stop(grace: Duration = .seconds(2)) async {
        defer { ProxyBenchChildren.shared.remove(pid) }
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            kill(pid, SIGKILL)
            while process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        }
    }

    /// Resident memory (VmRSS) in KiB.
    func residentKiB() -> Double? { ProxyBenchSystem.residentKiB(pid: pid) }

    /// User + system CPU seconds so far.
    func cpuSeconds() -> Double? { ProxyBenchSystem.cpuSeconds(pid: pid) }
}

/// Every child still running, so Ctrl-C can stop them before the benchmark exits.
final class ProxyBenchChildren: Sendable {
    static let shared = ProxyBenchChildren()
    private let pids = Mutex<Set<pid_t>>([])
    private let signalSources = Mutex<[any DispatchSourceSignal]>([])

    func add(_ pid: pid_t) { _ = pids.withLock { $0.insert(pid) } }
    func remove(_ pid: pid_t) { _ = pids.withLock { $0.remove(pid) } }

    /// On SIGINT or SIGTERM: SIGKILL every child, then exit.
    func installSignalHandlers() {
        signalSources.withLock { sources in
            guard sources.isEmpty else { return }
            for signalNumber in [SIGINT, SIGTERM] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler { [self] in
                    for pid in pids.withLock({ $0 }) { kill(pid, SIGKILL) }
                    FileHandle.standardError.write(Data("\ninterrupted; stopped the benchmark's servers\n".utf8))
                    exit(130)
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}

/// Reading /proc, pinning, descriptor limits, free ports.
enum ProxyBenchSystem {
    static let tasksetPath = ["/usr/bin/taskset", "/bin/taskset"].first { FileManager.default.isExecutableFile(atPath: $0) }
        ?? "/usr/bin/taskset"

    static let nicePath = ["/usr/bin/nice", "/bin/nice"].first { FileManager.default.isExecutableFile(atPath: $0) }
        ?? "/usr/bin/nice"

    /// Sets the nice value of every thread of this process (threads created later inherit it). Returns an error.
    static func setOwnNice(_ value: Int) -> String? {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        for task in tasks.compactMap({ id_t($0) }) {
            if setpriority(__priority_which_t(PRIO_PROCESS.rawValue), task, Int32(value)) != 0 {
                return "setpriority: errno \(errno)"
            }
        }
        return nil
    }

    /// This executable (`/proc/self/exe`).
    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static func residentKiB(pid: pid_t) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Double($0) }
        }
        return nil
    }

    static func cpuSeconds(pid: pid_t) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// This process's own CPU seconds (every thread).
    static func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Raises the soft descriptor limit to the hard one; returns the new soft limit.
    static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur >= UInt(Int32.max) ? 1 << 20 : Int(limit.rlim_cur)
    }

    /// Pins every thread of this process to `cpu` (threads created later inherit it). Returns an error text.
    static func pinSelf(to cpu: Int) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tasksetPath)
        process.arguments = ["-a", "-p", "-c", String(cpu), String(getpid())]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0 ? nil : "taskset exited with \(process.terminationStatus)"
        } catch {
            return "\(error)"
        }
    }

    /// True when something accepts TCP connections on 127.0.0.1:`port`.
    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// Runs a command and returns its standard output and error (for `haproxy -v`, `haproxy -c`).
    static func capture(_ arguments: [String]) -> (status: Int32, output: String)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The full path of `command` on $PATH, if any.
    static func which(_ command: String) -> String? {
        if command.contains("/") { return FileManager.default.isExecutableFile(atPath: command) ? command : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        for directory in (path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]) {
            let candidate = directory + "/" + command
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

import Foundation
import Synchronization
import NIOCore
import NIOPosix

/// A `redis-server` child process on a loopback port, with no persistence: for tests and for
/// `roomring up --mode pubsub` when no Redis is given.
///
/// ```swift
/// let redis = try await RedisServerProcess.start()
/// defer { redis.stop() }
/// print(redis.url)   // redis://127.0.0.1:<port>
/// ```
public final class RedisServerProcess: Sendable {
    /// The program started.
    public let executable: String
    /// The port it listens on (127.0.0.1).
    public let port: Int
    /// The running child's pid; nil once it has exited (and been reaped).
    private let state: Mutex<pid_t?>

    /// `redis://127.0.0.1:<port>`.
    public var url: RedisURL { RedisURL(host: "127.0.0.1", port: port) }

    /// The child's process id, nil when it is not running.
    public var pid: pid_t? {
        state.withLock { pid in
            if let running = pid, Self.reap(running, wait: false) { pid = nil }
            return pid
        }
    }

    private init(executable: String, port: Int, pid: pid_t) {
        self.executable = executable
        self.port = port
        self.state = Mutex(pid)
    }

    /// The `redis-server` program: `$ROOMRING_REDIS_SERVER`, else the first on `PATH`, else the usual system
    /// locations; nil when none is installed.
    public static func locate() -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let given = environment["ROOMRING_REDIS_SERVER"], !given.isEmpty {
            return FileManager.default.isExecutableFile(atPath: given) ? given : nil
        }
        let path = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in path + ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/opt/homebrew/bin"] {
            let candidate = directory + "/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Starts `redis-server` on a free loopback port (or `port`) and waits until it answers `PING`.
    /// - Parameters:
    ///   - executable: the program, default ``locate()``.
    ///   - port: the port, default a free one.
    ///   - arguments: extra `redis-server` arguments (e.g. `["--requirepass", "secret"]`).
    ///   - timeout: how long to wait for the first `PONG`.
    /// - Throws: ``RedisServerProcessError`` when none is installed, it exits, or it never answers.
    public static func start(executable: String? = nil, port: Int? = nil, arguments: [String] = [],
                             timeout: Duration = .seconds(10)) async throws -> RedisServerProcess {
        guard let executable = executable ?? locate() else {
            throw RedisServerProcessError("redis-server is not installed (apt-get install redis-server)")
        }
        var lastError: (any Error)?
        for _ in 0..<5 {
            let chosen = try port ?? freePort()
            do {
                let pid = try launch(executable: executable, port: chosen, arguments: arguments)
                let server = RedisServerProcess(executable: executable, port: chosen, pid: pid)
                do {
                    try await server.waitUntilAnswering(timeout: timeout)
                    return server
                } catch {
                    server.kill()
                    throw error
                }
            } catch {
                lastError = error
                // The free port may have been taken in between; try another one.
                if port != nil { break }
            }
        }
        throw lastError ?? RedisServerProcessError("redis-server did not start")
    }

    /// Starts it again on the same port (after ``kill()`` or ``stop()``), with the same arguments, and waits until
    /// it answers.
    public func restart(arguments: [String] = [], timeout: Duration = .seconds(10)) async throws {
        let pid = try Self.launch(executable: executable, port: port, arguments: arguments)
        state.withLock { $0 = pid }
        try await waitUntilAnswering(timeout: timeout)
    }

    /// Kills it with SIGKILL (a crash, as far as clients can tell) and waits for it to exit.
    public func kill() {
        state.withLock { pid in
            guard let running = pid else { return }
            Foundation.kill(running, SIGKILL)
            _ = Self.reap(running, wait: true)
            pid = nil
        }
    }

    /// Stops it with SIGTERM (SIGKILL after 5 s) and waits for it to exit.
    public func stop() {
        state.withLock { pid in
            guard let running = pid else { return }
            Foundation.kill(running, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while !Self.reap(running, wait: false) {
                guard Date() < deadline else {
                    Foundation.kill(running, SIGKILL)
                    _ = Self.reap(running, wait: true)
                    break
                }
                usleep(5_000)
            }
            pid = nil
        }
    }

    /// Whether `pid` has exited (reaping it); with `wait`, blocks until it does.
    private static func reap(_ pid: pid_t, wait: Bool) -> Bool {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, wait ? 0 : WNOHANG)
            if result == pid { return true }
            if result == 0 { return false }
            if errno == EINTR { continue }
            return true  // ECHILD: not our child any more (already reaped)
        }
    }

    /// Sends one command on a fresh connection and returns the reply (for tests and health checks).
    public func command(_ command: RESPCommand, password: String? = nil) async throws -> RESPValue {
        var url = self.url
        url.password = password
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let channel = try await RedisConnection.open(RedisConfiguration(url: url, connectTimeout: .milliseconds(500)),
                                                     on: loop).get()
        defer { channel.close(promise: nil) }
        let promise = loop.makePromise(of: RESPValue.self)
        try await channel.writeAndFlush(RedisCommandHandler.Request(bytes: RESPEncoder.bytes(command),
                                                                    promises: [promise]))
        return try await promise.futureResult.get()
    }

    private func waitUntilAnswering(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard pid != nil else {
                throw RedisServerProcessError("redis-server exited at start (port \(port) taken?)")
            }
            if let reply = try? await command(RESPCommand("PING")) {
                // A password-protected server answers NOAUTH: it is up.
                if reply == .simpleString("PONG") { return }
                if case .error = reply { return }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw RedisServerProcessError("redis-server did not answer PING on port \(port) within \(timeout)")
    }

    /// Spawns the server with every signal unblocked and at its default action: a child inherits the blocked
    /// signals of the thread that spawns it (event-loop and concurrency threads block most), and a server that
    /// cannot receive SIGTERM cannot be stopped gracefully.
    private static func launch(executable: String, port: Int, arguments: [String]) throws -> pid_t {
        let argv = [executable, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--daemonize", "no", "--loglevel", "warning", "--dir", FileManager.default.temporaryDirectory.path]
            + arguments
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var files = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&files)
        defer { posix_spawn_file_actions_destroy(&files) }
        posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&files, 1, "/dev/null", O_WRONLY, 0)
        var cArguments = argv.map { strdup($0) }
        cArguments.append(nil)
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &files, &attributes, cArguments, environ)
        guard result == 0 else {
            throw RedisServerProcessError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// A port that was free a moment ago (bound to 127.0.0.1:0, then released).
    static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        guard let port = channel.localAddress?.port else { throw RedisServerProcessError("no free port") }
        return port
    }
}

/// Why a `redis-server` child could not be started.
public struct RedisServerProcessError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

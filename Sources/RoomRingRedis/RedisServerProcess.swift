import Foundation
import Synchronization
import NIOCore
import NIOPosix
import RoomRingSpawn

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
    /// The running child; nil after ``kill()`` or ``stop()``.
    private let state: Mutex<ChildProcess?>

    /// `redis://127.0.0.1:<port>`.
    public var url: RedisURL { RedisURL(host: "127.0.0.1", port: port) }

    /// The child's process id, nil when it is not running.
    public var pid: pid_t? {
        state.withLock { child in child.flatMap { $0.isRunning ? $0.processIdentifier : nil } }
    }

    private init(executable: String, port: Int, child: ChildProcess) {
        self.executable = executable
        self.port = port
        self.state = Mutex(child)
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
            let chosen = try port ?? LoopbackPort.free()
            do {
                let child = try launch(executable: executable, port: chosen, arguments: arguments)
                let server = RedisServerProcess(executable: executable, port: chosen, child: child)
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
        let child = try Self.launch(executable: executable, port: port, arguments: arguments)
        state.withLock { $0 = child }
        try await waitUntilAnswering(timeout: timeout)
    }

    /// Kills it with SIGKILL (a crash, as far as clients can tell) and waits for it to exit.
    public func kill() {
        guard let child = state.withLock({ state in defer { state = nil }; return state }) else { return }
        child.signal(SIGKILL)
        child.waitUntilExit()
    }

    /// Stops it with SIGTERM (SIGKILL after 5 s) and waits for it to exit.
    public func stop() {
        guard let child = state.withLock({ state in defer { state = nil }; return state }) else { return }
        child.signal(SIGTERM)
        let deadline = ContinuousClock.now + .seconds(5)
        while child.isRunning, ContinuousClock.now < deadline { usleep(5_000) }
        child.signal(SIGKILL)
        child.waitUntilExit()
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

    /// Nothing of ours leaks into the server (``ChildProcess`` closes every other descriptor): a socket it inherited
    /// would stay open after we close it, and a peer would never see our FIN while the server runs.
    private static func launch(executable: String, port: Int, arguments: [String]) throws -> ChildProcess {
        let argv = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--daemonize", "no", "--loglevel", "warning", "--dir", FileManager.default.temporaryDirectory.path]
            + arguments
        do {
            return try ChildProcess(executable: executable, arguments: argv, stdin: .null, stdout: .null)
        } catch {
            throw RedisServerProcessError("\(error)")
        }
    }
}

/// Why a `redis-server` child could not be started.
public struct RedisServerProcessError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

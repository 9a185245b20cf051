import Foundation
import Logging
import RoomRingClient
import RoomRingCore
import ServiceLifecycle
import RoomRingSpawn
import Synchronization

/// One child process `roomring up` runs.
struct ChildSpec: Sendable {
    var name: String
    var arguments: [String]
    /// Polled at `/readyz` until it answers 200.
    var readyURL: HostPort
}

/// Starts child processes of this same binary, restarts the ones that die, and stops them all on shutdown.
final class Supervisor: Service, Sendable {
    static let maxRestarts = 5

    private let children: [ChildSpec]
    private let environment: [String: String]
    private let logger: Logger
    private let state = Mutex<State>(State())

    private struct State {
        var processes: [String: ChildProcess] = [:]
        var restarts: [String: Int] = [:]
        var stopping = false
    }

    init(children: [ChildSpec], environment: [String: String], logger: Logger) {
        self.children = children
        self.environment = environment
        self.logger = logger
    }

    /// Starts every child and waits until each is ready (30 s at most).
    func startAll() async throws {
        for child in children { try launch(child) }
        for child in children { try await waitReady(child) }
    }

    func run() async throws {
        try? await gracefulShutdown()
        await stopAll()
    }

    private func launch(_ child: ChildSpec) throws {
        var environment = ProcessInfo.processInfo.environment.merging(self.environment) { $1 }
        environment["ROOMRING_PARENT_PID"] = String(getpid())
        // Not Foundation's Process: its run() can crash while the in-process proxy opens and closes sockets.
        let process = try ChildProcess(executable: Self.executablePath, arguments: child.arguments,
                                       environment: environment, stdin: .null) { [weak self] status in
            self?.exited(child, status: status)
        }
        state.withLock { $0.processes[child.name] = process }
    }

    private func exited(_ child: ChildSpec, status: Int32) {
        let attempt: Int? = state.withLock { state in
            guard !state.stopping else { return nil }
            state.restarts[child.name, default: 0] += 1
            return state.restarts[child.name]! <= Self.maxRestarts ? state.restarts[child.name]! : nil
        }
        guard let attempt else {
            if !state.withLock({ $0.stopping }) {
                logger.error("\(child.name) exited with status \(status) and was restarted too often; giving up on it")
            }
            return
        }
        logger.error("\(child.name) exited with status \(status); restarting (attempt \(attempt)/\(Self.maxRestarts))")
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(500 * attempt)) { [self] in
            do { try launch(child) } catch { logger.error("\(child.name) could not be restarted: \(error)") }
        }
    }

    private func waitReady(_ child: ChildSpec) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let response = try? await HTTPClient.request("GET", host: child.readyURL.host, port: child.readyURL.port,
                                                            path: "/readyz", timeout: .seconds(1)),
                response.status == 200
            {
                return
            }
            let running = state.withLock { $0.processes[child.name]?.isRunning ?? false }
            if !running, state.withLock({ $0.restarts[child.name, default: 0] }) > 0 {
                throw SupervisorError(description: "\(child.name) exited while starting; see its log above")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw SupervisorError(description: "\(child.name) did not become ready at \(child.readyURL) within 30 s")
    }

    /// SIGTERM to every child, then SIGKILL to those still running after 10 s.
    func stopAll() async {
        let processes = state.withLock { state in
            state.stopping = true
            return Array(state.processes.values)
        }
        await withTaskGroup(of: Void.self) { group in
            for process in processes { group.addTask { await process.terminate(grace: .seconds(10)) } }
        }
    }

    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

struct SupervisorError: Error, CustomStringConvertible {
    var description: String
}

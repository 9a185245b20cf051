import Foundation
import NIOCore
import NIOPosix
import RoomRingRedis
import Synchronization
import Testing

/// Live tests run against a real `redis-server` each test starts on a free port (and kills by pid afterwards);
/// without one installed they are skipped with this reason (`.ci/run` installs it).
enum LiveRedis {
    static let isInstalled: Bool = {
        let found = RedisServerProcess.locate() != nil
        if !found { print("RoomRingRedisTests: skipping live tests: redis-server is not installed (apt-get install redis-server)") }
        return found
    }()

    /// Runs `body` with a fresh server, always stopping it.
    static func with<T>(arguments: [String] = [], _ body: (RedisServerProcess) async throws -> T) async throws -> T {
        let server = try await RedisServerProcess.start(arguments: arguments)
        do {
            let result = try await body(server)
            server.kill()
            return result
        } catch {
            server.kill()
            throw error
        }
    }

    static func configuration(_ url: RedisURL, commandTimeout: TimeAmount? = .seconds(5)) -> RedisConfiguration {
        RedisConfiguration(url: url, connectTimeout: .milliseconds(500), commandTimeout: commandTimeout,
                           backoff: RedisBackoff(initial: .milliseconds(20), maximum: .milliseconds(200)),
                           pingInterval: .milliseconds(500))
    }
}

/// Collects what a callback reports, for polling from a test.
final class Recorder<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])
    func append(_ new: [Element]) { items.withLock { $0.append(contentsOf: new) } }
    var all: [Element] { items.withLock { $0 } }
    func removeAll() { items.withLock { $0.removeAll() } }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func eventually(within timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(10))
    }
}

extension RedisSubscriber.Event {
    var messageText: String? {
        if case .message(_, let payload) = self { return String(buffer: payload) }
        return nil
    }
}

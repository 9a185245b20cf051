import Foundation
import RoomRingClient
import RoomRingSpawn
import RoomRingCore
import Synchronization
import Testing

// Nested in the serialized `UpCommandTests`: two fleets of processes never run at once on a small machine, and
// one fleet's client sockets cannot take the ports another is about to listen on.
extension UpCommandTests {
    /// `roomring chat` as a person uses it: lines typed on stdin go to the room, messages print, and the room moving
    /// to another shard only shows as a reconnect.
    @Suite(.serialized) struct ChatCommandTests {
        @Test(.timeLimit(.minutes(2)))
        func chatFollowsItsRoomThroughADrain() async throws {
            let ports = try UpCommandTests().fleetPorts(shards: 2)
            let token = "chat-test-token"
            let up = try RoomRingProcess(["up", "--shards", "2", "--port", String(ports.proxy),
                                          "--admin-port", String(ports.admin),
                                          "--shard-base-port", String(ports.shardBase),
                                          "--shard-admin-base-port", String(ports.adminBase)],
                                         environment: ["ROOMRING_ADMIN_TOKEN": token])
            let chat = try InteractiveProcess()
            do {
                try await up.waitFor("Ctrl-C stops everything")
                // A room that s1 owns, so draining s1 moves it to s2 (ownership depends on the ids only).
                let probe = HashRing(RingDocument(epoch: 1, shards: ["s1", "s2"].map {
                    .init(id: $0, address: "127.0.0.1:1", admin: "127.0.0.1:1")
                }))
                let room = (0..<10_000).map { "talk-\($0)" }.first { probe.owner(ofKey: $0)?.id == "s1" }!
                try chat.start(["chat", "ws://127.0.0.1:\(ports.proxy)/rooms/\(room)", "--name", "alice"])
                try await chat.waitFor("[state] connected(shard: \"s1\", seq: 0")
                chat.type("hello there")
                try await chat.waitFor("[1] alice: hello there")

                let drain = try RoomRingProcess(["ring", "drain", "s1", "--wait", "--timeout", "30",
                                                 "--proxy-admin", "http://127.0.0.1:\(ports.admin)",
                                                 "--admin-token", token])
                #expect(await drain.stop(0, timeout: .seconds(60)) == 0)
                try await chat.waitFor("[state] connected(shard: \"s2\", seq: 1, resumed: true)")
                chat.type("still here")
                try await chat.waitFor("[2] alice: still here")
                #expect(!chat.text.contains("[1] alice: hello there\n[1]"), "a message printed twice")

                chat.endInput()
                #expect(await chat.exitStatus(within: .seconds(20)) == 0, "\(chat.text)")
            } catch {
                chat.kill()
                _ = await up.stop()
                throw error
            }
            _ = await up.stop()
        }
    }
}

/// A `roomring` process with a pipe to its standard input.
final class InteractiveProcess: Sendable {
    private let process = Mutex<ChildProcess?>(nil)
    private let input = Mutex<FileHandle?>(nil)
    private let output: CapturedOutput

    init() throws { output = try CapturedOutput() }

    func start(_ arguments: [String]) throws {
        guard let binary = RoomRingProcess.binary else { throw ProcessFailure("roomring binary not found") }
        let (read, write) = try ChildProcess.pipe()
        defer { close(read) }
        input.withLock { $0 = FileHandle(fileDescriptor: write, closeOnDealloc: true) }
        let child = try ChildProcess(executable: binary.path, arguments: arguments, stdin: .descriptor(read),
                                     stdout: .descriptor(output.writeEnd), stderr: .descriptor(output.writeEnd))
        output.childStarted()
        process.withLock { $0 = child }
    }

    private var isRunning: Bool { process.withLock { $0?.isRunning ?? false } }

    var text: String { output.text }

    func type(_ line: String) { input.withLock { $0?.write(Data((line + "\n").utf8)) } }
    func endInput() { input.withLock { try? $0?.close() } }

    func waitFor(_ marker: String, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !text.contains(marker) {
            guard ContinuousClock.now < deadline, isRunning else {
                throw ProcessFailure("no \"\(marker)\" from roomring chat:\n\(text)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func exitStatus(within timeout: Duration) async -> Int32? {
        guard let child = process.withLock({ $0 }) else { return nil }
        if let status = await child.waitForExit(timeout: timeout) { return status }
        kill()
        return nil
    }

    func kill() { process.withLock { $0?.signal(SIGKILL) } }
}

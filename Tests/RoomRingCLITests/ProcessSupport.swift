import Foundation
import RoomRingClient
import RoomRingSpawn
import Synchronization

/// Runs the built `roomring` executable as a child process, capturing its output.
final class RoomRingProcess: Sendable {
    let process: ChildProcess
    private let output: CapturedOutput

    /// The `roomring` binary next to the test bundle (built by `swift build --build-tests` / `swift test`).
    static var binary: URL? {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("roomring")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        guard let binary = Self.binary else { throw ProcessFailure("roomring binary not found next to the tests") }
        // ChildProcess, not Foundation's Process, whose run() can crash with this many descriptors open (the
        // chaos test starts shards while thousands of its clients are connected): see ChildProcess.
        output = try CapturedOutput()
        do {
            process = try ChildProcess(executable: binary.path, arguments: arguments,
                                       environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                                       stdout: .descriptor(output.writeEnd), stderr: .descriptor(output.writeEnd))
        } catch {
            output.childStarted()
            throw error
        }
        output.childStarted()
    }

    var text: String { output.text }

    /// Waits until the output contains `marker`, failing early if the process exits.
    func waitFor(_ marker: String, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if text.contains(marker) { return }
            if !process.isRunning { throw ProcessFailure("exited before printing \"\(marker)\":\n\(text)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ProcessFailure("no \"\(marker)\" within \(timeout):\n\(text)")
    }

    /// Sends `signal` and waits for exit; returns the exit status, or nil if it did not exit in time.
    func stop(_ signal: Int32 = SIGTERM, timeout: Duration = .seconds(15)) async -> Int32? {
        process.signal(signal)
        if let status = await process.waitForExit(timeout: timeout) { return status }
        process.signal(SIGKILL)
        return nil
    }
}

/// A pipe for a child's stdout and stderr, collecting what it writes; the read end lives as long as this object
/// (closing it would SIGPIPE the child).
final class CapturedOutput: Sendable {
    private let reader: FileHandle
    private let buffer = OutputBuffer()
    /// The write end, for ``ChildProcess/Stream/descriptor(_:)``; closed by ``childStarted()``.
    let writeEnd: Int32

    init() throws {
        let (read, write) = try ChildProcess.pipe()
        writeEnd = write
        reader = FileHandle(fileDescriptor: read, closeOnDealloc: true)
        reader.readabilityHandler = { [buffer] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil  // EOF: every writer has exited
            } else {
                buffer.append(String(decoding: data, as: UTF8.self))
            }
        }
    }

    /// Closes our copy of the write end, so EOF arrives once the child (and anything it started) has exited.
    func childStarted() { close(writeEnd) }

    var text: String { buffer.text }
}

final class OutputBuffer: Sendable {
    private let storage = Mutex<String>("")
    func append(_ text: String) { storage.withLock { $0 += text } }
    var text: String { storage.withLock { $0 } }
}

struct ProcessFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func isListening(_ port: Int) async -> Bool {
    (try? await HTTPClient.request("GET", host: "127.0.0.1", port: port, path: "/healthz", timeout: .seconds(1))) != nil
}

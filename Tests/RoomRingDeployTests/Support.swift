import Foundation
import RoomRingSpawn

/// The repository's `deploy/` directory and the files in it.
enum Deploy {
    /// The repository root (this file is `Tests/RoomRingDeployTests/Support.swift`).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let directory = root.appendingPathComponent("deploy")

    static func url(_ relative: String) -> URL { directory.appendingPathComponent(relative) }

    static func text(_ relative: String) throws -> String { try String(contentsOf: url(relative), encoding: .utf8) }

    /// Every regular file under `deploy/`, as paths relative to the repository root, sorted.
    static func files() -> [String] {
        guard let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey])
        else { return [] }
        var found: [String] = []
        for case let url as URL in walker where (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile
            == true
        {
            found.append(String(url.standardizedFileURL.path.dropFirst(root.standardizedFileURL.path.count + 1)))
        }
        return found.sorted()
    }
}

/// The `roomring` binary next to the test bundle (built by `swift build --build-tests` / `swift test`).
enum RoomRingBinary {
    static var url: URL? {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("roomring")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }
}

/// External programs: finding them, running them to completion, running them in the background.
enum Tool {
    /// The full path of `name` on `PATH` or in the sbin directories (haproxy and nginx live in /usr/sbin).
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/local/sbin"]
        for directory in directories {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Prints why a test does not run and returns nil when `name` is missing.
    static func require(_ name: String, for purpose: String) -> String? {
        if let path = find(name) { return path }
        print("SKIP \(purpose): `\(name)` is not installed (.ci/run installs it)")
        return nil
    }

    struct Result {
        var status: Int32
        var output: String
    }

    /// Runs `executable` to completion (killed after `timeout`), stdout and stderr together.
    static func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws
        -> Result
    {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("roomring-deploy-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        let process = try ChildProcess(executable: executable, arguments: arguments,
                                       stdout: .descriptor(handle.fileDescriptor), stderr: .descriptor(handle.fileDescriptor))
        var status = await process.waitForExit(timeout: timeout)
        if status == nil {
            process.signal(SIGKILL)
            status = await process.waitForExit(timeout: .seconds(5))
        }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return Result(status: status ?? -1, output: output)
    }
}

/// A program running in the foreground of its own (not daemonized), stopped by its process id.
final class BackgroundProcess {
    let process: ChildProcess
    let logURL: URL

    init(_ executable: String, _ arguments: [String], log: URL) throws {
        logURL = log
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        process = try ChildProcess(executable: executable, arguments: arguments,
                                   stdout: .descriptor(handle.fileDescriptor), stderr: .descriptor(handle.fileDescriptor))
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// SIGTERM to this process id only; SIGKILL if it has not exited within `timeout`.
    func stop(timeout: Duration = .seconds(30)) async {
        guard process.isRunning else { return }
        await process.terminate(grace: timeout)
    }
}

/// YAML through Python's PyYAML (Debian: python3-yaml); nil when no Python with PyYAML is installed.
enum YAML {
    static let python: String? = {
        let candidates = ["/usr/bin/python3", Tool.find("python3")].compactMap { $0 }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            guard let process = try? ChildProcess(executable: candidate, arguments: ["-c", "import yaml"],
                                                  stdout: .null, stderr: .null) else { continue }
            process.waitUntilExit()
            if process.terminationStatus == 0 { return candidate }
        }
        return nil
    }()

    /// Every document of every file, keyed by the path given.
    static func load(_ paths: [String]) async throws -> [String: [Any]] {
        guard let python else { throw TestFailure("no python3 with PyYAML") }
        let script = """
            import json, sys, yaml
            out = {}
            for p in sys.argv[1:]:
                with open(p) as f:
                    out[p] = list(yaml.safe_load_all(f))
            print(json.dumps(out))
            """
        let result = try await Tool.run(python, ["-c", script] + paths)
        guard result.status == 0,
            let parsed = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: [Any]]
        else { throw TestFailure("YAML did not parse:\n\(result.output)") }
        return parsed
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

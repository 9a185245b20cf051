import ArgumentParser
import Foundation
import Logging
import RoomRingClient
import RoomRingCore
import RoomRingHTTP

/// Flags every serving command shares.
struct ServerOptions: ParsableArguments {
    @Option(help: "Bearer token for admin APIs (default: $ROOMRING_ADMIN_TOKEN).")
    var adminToken: String?

    @Option(help: "Event loop threads (default: number of cores).")
    var eventLoops: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: ArgumentHelp("Log format: text (for people) or json (one object per line, for log shippers).",
                               valueName: "text|json"))
    var logFormat: LogFormat = .text

    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    var resolvedToken: String? {
        adminToken ?? ProcessInfo.processInfo.environment["ROOMRING_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    var resolvedEventLoops: Int { max(1, eventLoops ?? ProcessInfo.processInfo.activeProcessorCount) }

    func makeLogger(label: String) -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let format = logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
        return Logger(label: label)
    }
}

/// Reads and validates a ring file, with an error that names the file.
func loadRing(_ path: String) throws -> RingDocument {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("cannot read ring file \(path)")
    }
    do {
        return try RingDocument.decode(data)
    } catch {
        throw ValidationError("\(path): \(error)")
    }
}

/// The newest ring any shard listed in `document` holds, when newer than `document`: a process (re)started from a
/// ring file that `roomring ring` changes have since outdated would otherwise route by, or claim rooms under, an old
/// ring (a shard answering 421 with an older epoch is never believed by a proxy). Each shard gets one second.
func newestRing(from document: RingDocument, token: String?, skipping id: String? = nil) async -> RingDocument {
    let headers = token.map { [("Authorization", "Bearer \($0)")] } ?? []
    var newest = document
    for shard in document.shards where shard.id != id {
        guard let admin = HostPort(shard.admin),
            let response = try? await HTTPClient.request("GET", host: admin.host, port: admin.port, path: "/ring",
                                                         headers: headers, timeout: .seconds(1)),
            response.status == 200, let ring = try? RingDocument.decode(response.body), ring.epoch > newest.epoch,
            (try? ring.validate()) != nil
        else { continue }
        newest = ring
    }
    return newest
}

/// Parses `host:port`, or a bare port with the default host.
func parseAddress(_ text: String, defaultHost: String = "127.0.0.1") throws -> HostPort {
    if let port = Int(text), (0...65535).contains(port) { return HostPort(host: defaultHost, port: port) }
    guard let address = HostPort(text) else { throw ValidationError("\"\(text)\" is not host:port or a port") }
    return address
}

/// Children of `roomring up` stop when their parent dies, even by SIGKILL, instead of lingering as orphans:
/// the supervisor sets `ROOMRING_PARENT_PID`, and the child polls `getppid()`.
enum ParentWatch {
    static func start(onOrphaned: @escaping @Sendable () async -> Void) -> Task<Void, Never>? {
        guard let text = ProcessInfo.processInfo.environment["ROOMRING_PARENT_PID"], let parent = Int32(text) else {
            return nil
        }
        return Task {
            while !Task.isCancelled {
                if getppid() != parent {
                    await onOrphaned()
                    return
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}

/// A comma-separated flag value (`--rates 1000,2000`), each item parsed by `parse`.
/// - Throws: `ValidationError(message)` when the list is empty or an item does not parse.
func commaSeparated<T>(_ text: String, _ message: String, _ parse: (String) -> T?) throws -> [T] {
    let values = text.split(separator: ",").map { parse($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else { throw ValidationError(message) }
    return values.map { $0! }
}

/// A positive integer, or nil.
func positiveInteger(_ text: String) -> Int? { Int(text).flatMap { $0 > 0 ? $0 : nil } }

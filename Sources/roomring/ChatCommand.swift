import ArgumentParser
import Foundation
import RoomRingClient
import RoomRingCore

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A terminal chat in one room: type a line to send it; messages print as they arrive.",
        discussion: """
            Connects through the proxy (or to a shard), reconnects with backoff when the room moves or a process
            restarts, resumes from the last message seen, and resends lines that were not acknowledged.
            Lines starting with "[state]" on stderr show the connection; Ctrl-D or Ctrl-C quits.
            """
    )

    @Argument(help: "Room URL, e.g. ws://127.0.0.1:8080/rooms/lobby")
    var url: String

    @Option(help: "Your display name.")
    var name: String = ProcessInfo.processInfo.environment["USER"] ?? "guest"

    @Option(help: "Client id for dedup across reconnects (default: random).")
    var client: String?

    func run() async throws {
        let target = try RoomURL(url)
        var options = RoomClient.Options(name: name)
        if let client { options.clientID = client }
        let room = RoomClient(host: target.host, port: target.port, room: target.room, options: options,
                              // Unbuffered: `print` into a pipe would hold messages back until exit.
                              onMessage: { chat in
                                  let line = "[\(chat.seq)] \(chat.from): \(chat.message)\n"
                                  FileHandle.standardOutput.write(Data(line.utf8))
                              },
                              onState: { state in FileHandle.standardError.write(Data("[state] \(state)\n".utf8)) })
        await room.start()
        // Standard input is read on its own thread: `readLine` blocks.
        let lines = AsyncStream<String> { continuation in
            Thread.detachNewThread {
                while let line = readLine() { continuation.yield(line) }
                continuation.finish()
            }
        }
        for await line in lines {
            let text = line.trimmingCharacters(in: CharacterSet.whitespaces)
            guard !text.isEmpty else { continue }
            Task { _ = try? await room.send(text) }
        }
        // Give in-flight lines a moment to be acknowledged before leaving.
        let deadline = ContinuousClock.now + .seconds(3)
        while await room.unacknowledged > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        await room.close()
    }
}

/// `ws://host:port/rooms/<id>` split into its parts.
struct RoomURL {
    var host: String
    var port: Int
    var room: RoomID

    init(_ text: String) throws {
        guard let components = URLComponents(string: text), components.scheme == "ws", let host = components.host,
            case .room(let room, _) = RoomPath.parse(components.path)
        else { throw ValidationError("\"\(text)\" is not ws://HOST[:PORT]/rooms/<room>") }
        self.host = host
        self.port = components.port ?? 80
        self.room = room
    }
}

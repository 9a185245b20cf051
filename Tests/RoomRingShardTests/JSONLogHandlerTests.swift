import Foundation
import Logging
import RoomRingHTTP
import Synchronization
import Testing

@Suite("JSONLogHandler") struct JSONLogHandlerTests {
    final class Lines: Sendable {
        private let storage = Mutex<[String]>([])
        func append(_ line: String) { storage.withLock { $0.append(line) } }
        var all: [String] { storage.withLock { $0 } }
    }

    func logger(_ lines: Lines, level: Logger.Level = .info) -> Logger {
        var handler = JSONLogHandler(label: "test.logger") { lines.append($0) }
        handler.logLevel = level
        return Logger(label: "test.logger", factory: { _ in handler })
    }

    func object(_ line: String) throws -> [String: String] {
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1, "one line per event: \(line)")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
    }

    @Test("one JSON object per line with ts, level, logger, msg and the metadata as fields")
    func fields() throws {
        let lines = Lines()
        var log = logger(lines)
        log[metadataKey: "shard"] = "s1"
        log.info("member closed", metadata: ["room": "lobby", "code": "1009"])
        let fields = try object(try #require(lines.all.first))
        #expect(fields["level"] == "info" && fields["logger"] == "test.logger" && fields["msg"] == "member closed")
        #expect(fields["shard"] == "s1" && fields["room"] == "lobby" && fields["code"] == "1009")
        let ts = try #require(fields["ts"])
        #expect(ts.count == 24 && ts.hasSuffix("Z") && ts.dropFirst(10).hasPrefix("T"), "\(ts)")
    }

    @Test("hostile text stays inside its string: quotes, newlines, control bytes, unicode")
    func escaping() throws {
        let lines = Lines()
        let hostile = "a\"b\\c\nd\r\u{0}\u{1f}é😀</script>"
        logger(lines).warning("\(hostile)", metadata: ["key\"\n": "\(hostile)"])
        let fields = try object(try #require(lines.all.first))
        #expect(fields["msg"] == hostile)
        #expect(fields["key\"\n"] == hostile)
    }

    @Test("metadata cannot overwrite ts, level, logger or msg")
    func reserved() throws {
        let lines = Lines()
        logger(lines).error("real", metadata: ["msg": "forged", "level": "trace", "ts": "0", "logger": "x"])
        let fields = try object(try #require(lines.all.first))
        #expect(fields["msg"] == "real" && fields["level"] == "error" && fields["logger"] == "test.logger")
        #expect(fields["ts"] != "0")
    }

    @Test("events below the level are not written")
    func levels() {
        let lines = Lines()
        let log = logger(lines, level: .notice)
        log.info("hidden")
        log.debug("hidden")
        log.notice("shown")
        #expect(lines.all.count == 1)
    }
}

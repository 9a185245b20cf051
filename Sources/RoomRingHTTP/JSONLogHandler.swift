import Foundation
import Logging
import RoomRingCore

/// One JSON object per line on standard error, for log shippers (journald, Loki, Elasticsearch):
/// `{"ts":"2026-11-29T23:40:01.123Z","level":"info","logger":"roomring.proxy","msg":"...","room":"lobby",...}`.
/// Metadata keys become top-level fields; `ts`, `level`, `logger` and `msg` are never overwritten by them.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - label: the logger's label, logged as `logger`.
    ///   - write: where a finished line goes (standard error by default).
    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        var line = #"{"ts":"# + JSONText.quoted(Self.timestamp()) + #","level":"# + JSONText.quoted(event.level.rawValue)
        line += #","logger":"# + JSONText.quoted(label) + #","msg":"# + JSONText.quoted("\(event.message)")
        for key in fields.keys.sorted() where !Self.reserved.contains(key) {
            line += "," + JSONText.quoted(key) + ":" + JSONText.quoted(fields[key]!.description)
        }
        write(line + "}\n")
    }

    private static let reserved: Set<String> = ["ts", "level", "logger", "msg"]

    /// Whole lines go out in one `write(2)`, so lines from several threads never interleave.
    public static let standardError: @Sendable (String) -> Void = { line in
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Foundation.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = time_t(now.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let millis = Int(now.tv_nsec) / 1_000_000
        func pad(_ value: Int32, _ width: Int = 2) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))T"
            + "\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)).\(pad(Int32(millis), 3))Z"
    }
}

import Synchronization

/// The id that ties one request's log lines together across the proxy and the shard (`X-Request-ID`).
///
/// The proxy keeps an id the client sent when it is safe to log and forward, and otherwise makes one:
/// a random per-process prefix and a counter, so ids from several proxies do not collide and making one
/// costs an atomic increment.
public final class RequestIDGenerator: Sendable {
    /// The header that carries the id from the proxy to the shard.
    public static let header = "X-Request-ID"
    /// Longest id accepted from a client.
    public static let maxLength = 64

    private let prefix: String
    private let counter = Atomic<UInt64>(0)

    /// - Parameter prefix: fixed start of every id; random when nil.
    public init(prefix: String? = nil) {
        self.prefix = prefix ?? String(UInt32.random(in: .min ... .max), radix: 16)
    }

    /// A new id, unique within this generator.
    public func next() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return prefix + "-" + String(n, radix: 16)
    }

    /// `text` when it is 1–64 characters of `A–Z a–z 0–9 . _ : -` (nothing that could forge a log field or a
    /// header), else nil.
    public static func sanitized(_ text: String?) -> String? {
        guard let text, !text.isEmpty, text.utf8.count <= maxLength else { return nil }
        let allowed = text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
                UInt8(ascii: "-"):
                true
            default: false
            }
        }
        return allowed ? text : nil
    }
}

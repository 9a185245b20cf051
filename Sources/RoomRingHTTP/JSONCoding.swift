import Foundation

/// Compact JSON with sorted keys for API answers.
public enum JSONCoding {
    /// The JSON text of `value`.
    public static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

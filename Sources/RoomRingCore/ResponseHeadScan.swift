/// What the proxy needs from a shard's response head before it splices: where the head ends, its status, and
/// (for a `421`) the shard's `RoomRing-Epoch`; everything else is relayed untouched. The clients find head ends
/// with it too.
public enum ResponseHeadScan {
    /// Index just past the `\r\n\r\n` that ends the head, or nil when it has not arrived yet.
    public static func headEnd(_ bytes: [UInt8], searchingFrom start: Int = 0) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var i = max(0, start - 3)
        while i + 3 < bytes.count {
            if bytes[i + 3] != 10 {
                i += bytes[i + 3] == 13 ? 1 : 4
                continue
            }
            if bytes[i] == 13, bytes[i + 1] == 10, bytes[i + 2] == 13 { return i + 4 }
            i += 1
        }
        return nil
    }

    /// The status of `HTTP/1.x NNN ...`, or nil when the status line is not that.
    public static func status(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 13, bytes.starts(with: "HTTP/1.".utf8), bytes[8] == UInt8(ascii: " "),
            bytes[12] == UInt8(ascii: " ") || bytes[12] == 13 else { return nil }
        var status = 0
        for byte in bytes[9..<12] {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            status = status * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return status
    }

    /// The `RoomRing-Epoch` header of the head in `bytes[..<end]`, or nil without a valid one.
    public static func epoch(_ bytes: [UInt8], headEnd end: Int) -> UInt64? {
        let text = String(decoding: bytes[..<min(end, bytes.count)], as: UTF8.self)
        for line in text.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == "roomring-epoch" {
                var value = line[line.index(after: colon)...]
                while value.first == " " || value.first == "\t" { value.removeFirst() }
                while value.last == " " || value.last == "\t" { value.removeLast() }
                return UInt64(value)
            }
        }
        return nil
    }
}

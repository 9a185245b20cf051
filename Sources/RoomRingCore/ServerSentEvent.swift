/// Server-Sent Events framing (WHATWG HTML §9.2) of the server messages, for `GET /rooms/<id>/events`.
///
/// Every ``ServerMessage`` becomes one event named after its `type` whose `data` is its `payload`; a chat also
/// carries `id: <seq>`, so a reconnecting `EventSource` sends `Last-Event-ID` and is replayed from there:
///
/// ```
/// event: hello
/// data: {"shard":"s2","room":"lobby","seq":41,"epoch":3,"resumed":true}
///
/// id: 42
/// event: chat
/// data: {"message":"hi there","from":"alice","seq":42,"ts":1732230000123}
/// ```
public enum ServerSentEvent {
    /// The event for one encoded server message (as ``ServerMessage/encoded()`` writes it), or nil when `frame` is
    /// not in that form.
    public static func encode(frame: some Collection<UInt8>) -> [UInt8]? {
        let bytes = Array(frame)
        let prefix = Array(#"{"type":""#.utf8)
        guard bytes.count > prefix.count + 1, bytes.starts(with: prefix), bytes.last == UInt8(ascii: "}") else {
            return nil
        }
        guard let typeEnd = bytes[prefix.count...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        let type = bytes[prefix.count..<typeEnd]
        let separator = Array(#","payload":"#.utf8)
        guard bytes[(typeEnd + 1)...].starts(with: separator) else { return nil }
        let payload = bytes[(typeEnd + 1 + separator.count)..<(bytes.count - 1)]
        // The encoder escapes every control character inside strings, so a raw line break would be a bug upstream;
        // it must never split an event.
        guard !payload.contains(where: { $0 == 10 || $0 == 13 }), !type.isEmpty,
            type.allSatisfy({ $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") })
        else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 48)
        if type.elementsEqual("chat".utf8), let seq = seq(in: payload) {
            out += "id: \(seq)\n".utf8
        }
        out += "event: ".utf8
        out += type
        out += "\ndata: ".utf8
        out += payload
        out += "\n\n".utf8
        return out
    }

    /// A comment line (ignored by clients; keeps idle proxies from closing the stream).
    public static func comment(_ text: String) -> [UInt8] {
        Array((": " + text.filter { $0 != "\n" && $0 != "\r" } + "\n\n").utf8)
    }

    /// The `seq` member of a chat payload. A quote inside a JSON string is always escaped, so `,"seq":` can only
    /// be the member itself, never part of a message.
    static func seq(in payload: ArraySlice<UInt8>) -> UInt64? {
        let key = Array(#","seq":"#.utf8)
        var index = payload.startIndex
        while index + key.count <= payload.endIndex {
            if payload[index..<(index + key.count)].elementsEqual(key) {
                let digits = payload[(index + key.count)...].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
                return UInt64(String(decoding: digits, as: UTF8.self))
            }
            index += 1
        }
        return nil
    }

    /// Parses a `Last-Event-ID` or `since` value: a decimal seq, or nil when it is not one.
    public static func parseSeq(_ text: String) -> UInt64? {
        var bytes = Array(text.utf8)[...]
        while let first = bytes.first, first == 32 || first == 9 { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == 32 || last == 9 { bytes = bytes.dropLast() }
        let trimmed = bytes
        guard !trimmed.isEmpty, trimmed.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        return UInt64(String(decoding: trimmed, as: UTF8.self))
    }
}

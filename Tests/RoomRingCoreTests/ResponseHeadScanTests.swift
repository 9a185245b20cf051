import RoomRingCore
import Testing

@Suite struct ResponseHeadScanTests {
    static let head = Array("HTTP/1.1 421 Misdirected Request\r\nContent-Length: 0\r\nRoomRing-Epoch:  7 \r\n\r\n".utf8)

    @Test func headEndIsFoundWhateverTheChunking() {
        let bytes = Self.head + Array("frames".utf8)
        for split in 0...bytes.count {
            // As the proxy feeds it: scan the first chunk, then resume where the previous scan stopped.
            let first = Array(bytes[..<split])
            var end = ResponseHeadScan.headEnd(first)
            if end == nil { end = ResponseHeadScan.headEnd(bytes, searchingFrom: first.count) }
            #expect(end == Self.head.count, "split at \(split)")
        }
    }

    @Test func noHeadEndInPartialOrBareLineFeedHeads() {
        for text in ["", "HTTP/1.1 101", "HTTP/1.1 101 OK\r\n\r", "HTTP/1.1 101 OK\n\n", "\r\n\r", "a\r\r\n\n"] {
            #expect(ResponseHeadScan.headEnd(Array(text.utf8)) == nil, "\(text.debugDescription)")
        }
        #expect(ResponseHeadScan.headEnd(Array("\r\n\r\n".utf8)) == 4)
        #expect(ResponseHeadScan.headEnd(Array("x\r\r\n\r\n".utf8)) == 6)
    }

    @Test func statusLines() {
        let cases: [(String, Int?)] = [
            ("HTTP/1.1 101 Switching Protocols\r\n", 101), ("HTTP/1.0 503 Busy\r\n", 503), ("HTTP/1.1 200\r\n", 200),
            ("HTTP/2.0 200 OK\r\n", nil), ("HTTP/1.1 20 OK\r\n", nil), ("HTTP/1.1 2000 OK\r\n", nil),
            ("HTTP/1.1 abc OK\r\n", nil), ("http/1.1 200 OK\r\n", nil), ("HTTP/1.1  200 OK\r\n", nil), ("", nil),
            ("SSH-2.0-OpenSSH\r\n", nil),
        ]
        for (line, status) in cases {
            #expect(ResponseHeadScan.status(Array(line.utf8)) == status, "\(line.debugDescription)")
        }
    }

    @Test func epochHeader() {
        #expect(ResponseHeadScan.epoch(Self.head, headEnd: Self.head.count) == 7)
        let cases: [(String, UInt64?)] = [
            ("roomring-epoch: 12", 12), ("ROOMRING-EPOCH:\t3\t", 3), ("RoomRing-Epoch: -1", nil),
            ("RoomRing-Epoch: 1 2", nil), ("RoomRing-Epoch:", nil), ("X-RoomRing-Epoch: 5", nil),
            ("RoomRing-Epoch: 18446744073709551616", nil),
        ]
        for (line, epoch) in cases {
            let bytes = Array("HTTP/1.1 421 X\r\n\(line)\r\n\r\n".utf8)
            #expect(ResponseHeadScan.epoch(bytes, headEnd: bytes.count) == epoch, "\(line)")
        }
        // Only the head counts: a header-like line in the body is not the epoch.
        let body = Array("HTTP/1.1 421 X\r\n\r\nRoomRing-Epoch: 9\r\n".utf8)
        #expect(ResponseHeadScan.epoch(body, headEnd: 18) == nil)
    }
}

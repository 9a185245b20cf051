import RoomRingCore
import Testing

@Suite("WebSocketFrameHeader") struct WebSocketFrameHeaderTests {
    @Test("length encodings at every boundary (7-bit, 16-bit, 64-bit)", arguments: [
        (0, [0x81, 0]), (1, [0x81, 1]), (125, [0x81, 125]),
        (126, [0x81, 126, 0, 126]), (127, [0x81, 126, 0, 127]), (65_535, [0x81, 126, 0xFF, 0xFF]),
        (65_536, [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]), (1 << 32, [0x81, 127, 0, 0, 0, 1, 0, 0, 0, 0]),
    ] as [(Int, [UInt8])])
    func lengths(length: Int, expected: [UInt8]) {
        #expect(WebSocketFrameHeader.server(opcode: 0x1, length: length) == expected)
    }

    @Test("the header parses back as a final, unmasked frame of the same opcode and length")
    func parsesBack() {
        for opcode: UInt8 in [0x1, 0x2, 0x8, 0x9, 0xA] {
            for length in [0, 5, 125, 126, 300, 65_535, 65_536, 1_000_000] {
                let header = WebSocketFrameHeader.server(opcode: opcode, length: length)
                #expect(header[0] & 0x80 != 0 && header[0] & 0x70 == 0 && header[0] & 0x0F == opcode)
                #expect(header[1] & 0x80 == 0, "a server frame is never masked")
                var decoded = Int(header[1] & 0x7F)
                if decoded == 126 { decoded = Int(header[2]) << 8 | Int(header[3]) }
                if decoded == 127 { decoded = header[2...9].reduce(0) { $0 << 8 | Int($1) } }
                #expect(decoded == length)
                // The shortest form is used (RFC 6455 §5.2: "the minimal number of bytes MUST be used").
                #expect(header.count == (length <= 125 ? 2 : length <= 65_535 ? 4 : 10))
            }
        }
    }
}

/// The header of a frame a server sends (RFC 6455 §5.2): FIN set, no reserved bits, never masked.
///
/// A broadcast goes to every member of a room as the same bytes, so the shard frames it once per event loop and
/// writes that one buffer to each member, instead of letting the frame encoder build a header per member.
public enum WebSocketFrameHeader {
    /// Header bytes for a final, unmasked frame with `opcode` carrying `length` payload bytes.
    public static func server(opcode: UInt8, length: Int) -> [UInt8] {
        precondition(length >= 0 && opcode < 16)
        let first = 0x80 | opcode
        switch length {
        case 0...125:
            return [first, UInt8(length)]
        case 126...0xFFFF:
            return [first, 126, UInt8(length >> 8), UInt8(length & 0xFF)]
        default:
            var header: [UInt8] = [first, 127]
            for shift in stride(from: 56, through: 0, by: -8) { header.append(UInt8((UInt64(length) >> UInt64(shift)) & 0xFF)) }
            return header
        }
    }
}

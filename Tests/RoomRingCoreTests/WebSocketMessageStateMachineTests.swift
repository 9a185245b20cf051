import Testing
import RoomRingCore

/// Pure RFC 6455 frame rules (DESIGN.md §4, "The shard is a conforming RFC 6455 server").
@Suite struct WebSocketMessageStateMachineTests {
    typealias Machine = WebSocketMessageStateMachine
    typealias Action = WebSocketMessageStateMachine.Action

    static let reservedOpcodes: [UInt8] = [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]

    /// The code of a `.fail`, nil for anything else.
    static func failCode(_ action: Action) -> UInt16? {
        if case .fail(let code, _) = action { return code }
        return nil
    }

    /// What a machine with no message in progress must answer (masked, rsv 0, short payload).
    static func expectedIdle(opcode: UInt8, fin: Bool) -> Action? {
        switch (opcode, fin) {
        case (0x1, true): .single(.text)
        case (0x1, false): .start(.text)
        case (0x2, true): .single(.binary)
        case (0x2, false): .start(.binary)
        case (0x8, true): .close
        case (0x9, true): .ping
        case (0xA, true): .pong
        default: nil  // fail with 1002
        }
    }

    // MARK: - Opcodes, FIN, RSV, mask

    @Test(arguments: UInt8(0)...UInt8(15), [true, false])
    func everyOpcodeWithoutAMessageInProgress(opcode: UInt8, fin: Bool) {
        var machine = Machine()
        let action = machine.frame(fin: fin, rsv: 0, opcode: opcode, masked: true, length: 10)
        if let expected = Self.expectedIdle(opcode: opcode, fin: fin) {
            #expect(action == expected)
        } else {
            #expect(Self.failCode(action) == 1002, "opcode \(opcode) fin \(fin): \(action)")
        }
    }

    @Test(arguments: UInt8(0)...UInt8(15), [true, false])
    func everyOpcodeInsideAFragmentedTextMessage(opcode: UInt8, fin: Bool) {
        var machine = Machine()
        #expect(machine.frame(fin: false, rsv: 0, opcode: 0x1, masked: true, length: 3) == .start(.text))
        let action = machine.frame(fin: fin, rsv: 0, opcode: opcode, masked: true, length: 4)
        switch opcode {
        case 0x0:
            #expect(action == (fin ? .finish(.text) : .append))
        case 0x8, 0x9, 0xA:
            if fin {
                #expect(action == (opcode == 0x8 ? .close : opcode == 0x9 ? .ping : .pong))
                // A control frame in the middle does not disturb the message.
                #expect(machine.frame(fin: true, rsv: 0, opcode: 0x0, masked: true, length: 1) == .finish(.text))
            } else {
                #expect(Self.failCode(action) == 1002)
            }
        default:
            // New data frames and reserved opcodes are both protocol errors here.
            #expect(Self.failCode(action) == 1002, "opcode \(opcode) fin \(fin): \(action)")
        }
    }

    @Test(arguments: UInt8(0)...UInt8(15), UInt8(1)...UInt8(7))
    func anyReservedBitFails(opcode: UInt8, rsv: UInt8) {
        for fin in [true, false] {
            var machine = Machine()
            let action = machine.frame(fin: fin, rsv: rsv, opcode: opcode, masked: true, length: 5)
            #expect(Self.failCode(action) == 1002, "rsv \(rsv) opcode \(opcode) fin \(fin)")
        }
    }

    @Test(arguments: UInt8(0)...UInt8(15))
    func unmaskedClientFramesFail(opcode: UInt8) {
        for fin in [true, false] {
            var idle = Machine()
            #expect(Self.failCode(idle.frame(fin: fin, rsv: 0, opcode: opcode, masked: false, length: 5)) == 1002)
            var fragmented = Machine()
            _ = fragmented.frame(fin: false, rsv: 0, opcode: 0x1, masked: true, length: 5)
            #expect(Self.failCode(fragmented.frame(fin: fin, rsv: 0, opcode: opcode, masked: false, length: 5)) == 1002)
        }
    }

    @Test func reservedOpcodesFailWithAReason() {
        for opcode in Self.reservedOpcodes {
            var machine = Machine()
            guard case .fail(let code, let reason) = machine.frame(fin: true, rsv: 0, opcode: opcode, masked: true,
                                                                   length: 0)
            else {
                Issue.record("opcode \(opcode) accepted")
                continue
            }
            #expect(code == 1002 && !reason.isEmpty)
        }
    }

    // MARK: - Control frames

    @Test(arguments: [UInt8(0x8), 0x9, 0xA])
    func controlFrameLengths(opcode: UInt8) {
        let ok: Action = opcode == 0x8 ? .close : opcode == 0x9 ? .ping : .pong
        for length in [0, 1, 124, 125] {
            var machine = Machine()
            #expect(machine.frame(fin: true, rsv: 0, opcode: opcode, masked: true, length: length) == ok)
        }
        for length in [126, 127, 1000, 65_536] {
            var machine = Machine()
            #expect(Self.failCode(machine.frame(fin: true, rsv: 0, opcode: opcode, masked: true, length: length))
                == 1002)
        }
        // A small machine limit does not apply to control frames (they have their own 125-byte rule).
        var tiny = Machine(maxMessageBytes: 10)
        #expect(tiny.frame(fin: true, rsv: 0, opcode: opcode, masked: true, length: 125) == ok)
    }

    @Test func fragmentedControlFramesFailEvenWhenShort() {
        for opcode: UInt8 in [0x8, 0x9, 0xA] {
            var machine = Machine()
            #expect(Self.failCode(machine.frame(fin: false, rsv: 0, opcode: opcode, masked: true, length: 0)) == 1002)
        }
    }

    // MARK: - Fragmentation

    @Test(arguments: [Machine.MessageKind.text, .binary])
    func startAppendFinish(kind: Machine.MessageKind) {
        var machine = Machine()
        let opcode: UInt8 = kind == .text ? 0x1 : 0x2
        #expect(machine.frame(fin: false, rsv: 0, opcode: opcode, masked: true, length: 10) == .start(kind))
        #expect(machine.frame(fin: false, rsv: 0, opcode: 0x0, masked: true, length: 10) == .append)
        #expect(machine.frame(fin: false, rsv: 0, opcode: 0x0, masked: true, length: 0) == .append)
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0x0, masked: true, length: 10) == .finish(kind))
        // The message is over: a continuation is now an error, a new message is fine.
        var after = machine
        #expect(Self.failCode(after.frame(fin: true, rsv: 0, opcode: 0x0, masked: true, length: 1)) == 1002)
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0x1, masked: true, length: 1) == .single(.text))
    }

    @Test func emptyFragmentsAreMessagesToo() {
        var machine = Machine()
        #expect(machine.frame(fin: false, rsv: 0, opcode: 0x1, masked: true, length: 0) == .start(.text))
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0x0, masked: true, length: 0) == .finish(.text))
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0x1, masked: true, length: 0) == .single(.text))
    }

    @Test func continuationWithoutStartFails() {
        for fin in [true, false] {
            var machine = Machine()
            #expect(Self.failCode(machine.frame(fin: fin, rsv: 0, opcode: 0x0, masked: true, length: 3)) == 1002)
        }
        // Also after a complete single-frame message.
        var machine = Machine()
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0x1, masked: true, length: 3) == .single(.text))
        #expect(Self.failCode(machine.frame(fin: true, rsv: 0, opcode: 0x0, masked: true, length: 3)) == 1002)
    }

    @Test(arguments: [UInt8(0x1), 0x2], [UInt8(0x1), 0x2])
    func newDataFrameDuringFragmentsFails(first: UInt8, second: UInt8) {
        for fin in [true, false] {
            var machine = Machine()
            _ = machine.frame(fin: false, rsv: 0, opcode: first, masked: true, length: 3)
            #expect(Self.failCode(machine.frame(fin: fin, rsv: 0, opcode: second, masked: true, length: 3)) == 1002)
        }
    }

    @Test func controlFramesInterleavedInsideFragments() {
        var machine = Machine()
        #expect(machine.frame(fin: false, rsv: 0, opcode: 0x1, masked: true, length: 2) == .start(.text))
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0x9, masked: true, length: 3) == .ping)
        #expect(machine.frame(fin: false, rsv: 0, opcode: 0x0, masked: true, length: 2) == .append)
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0xA, masked: true, length: 0) == .pong)
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0x9, masked: true, length: 125) == .ping)
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0x0, masked: true, length: 2) == .finish(.text))
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0x1, masked: true, length: 2) == .single(.text))
    }

    // MARK: - Size limit (1009)

    @Test func singleFrameSizeLimit() {
        var machine = Machine(maxMessageBytes: 100)
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0x1, masked: true, length: 100) == .single(.text))
        #expect(machine.frame(fin: true, rsv: 0, opcode: 0x2, masked: true, length: 100) == .single(.binary))
        var over = Machine(maxMessageBytes: 100)
        #expect(Self.failCode(over.frame(fin: true, rsv: 0, opcode: 0x1, masked: true, length: 101)) == 1009)
        var overStart = Machine(maxMessageBytes: 100)
        #expect(Self.failCode(overStart.frame(fin: false, rsv: 0, opcode: 0x1, masked: true, length: 101)) == 1009)
        #expect(Machine().maxMessageBytes == 64 * 1024)
        var defaults = Machine()
        #expect(defaults.frame(fin: true, rsv: 0, opcode: 0x1, masked: true, length: 65_536) == .single(.text))
        #expect(Self.failCode(defaults.frame(fin: true, rsv: 0, opcode: 0x1, masked: true, length: 65_537)) == 1009)
    }

    @Test func sizeLimitCountsAllFragments() {
        var exact = Machine(maxMessageBytes: 100)
        #expect(exact.frame(fin: false, rsv: 0, opcode: 0x1, masked: true, length: 40) == .start(.text))
        #expect(exact.frame(fin: false, rsv: 0, opcode: 0x0, masked: true, length: 40) == .append)
        #expect(exact.frame(fin: true, rsv: 0, opcode: 0x0, masked: true, length: 20) == .finish(.text))

        var overOnAppend = Machine(maxMessageBytes: 100)
        _ = overOnAppend.frame(fin: false, rsv: 0, opcode: 0x1, masked: true, length: 60)
        #expect(Self.failCode(overOnAppend.frame(fin: false, rsv: 0, opcode: 0x0, masked: true, length: 41)) == 1009)

        var overOnFinish = Machine(maxMessageBytes: 100)
        _ = overOnFinish.frame(fin: false, rsv: 0, opcode: 0x2, masked: true, length: 50)
        _ = overOnFinish.frame(fin: false, rsv: 0, opcode: 0x0, masked: true, length: 50)
        #expect(Self.failCode(overOnFinish.frame(fin: true, rsv: 0, opcode: 0x0, masked: true, length: 1)) == 1009)

        // Many small fragments add up too.
        var many = Machine(maxMessageBytes: 100)
        _ = many.frame(fin: false, rsv: 0, opcode: 0x1, masked: true, length: 1)
        var last: Action = .append
        for _ in 0..<100 { last = many.frame(fin: false, rsv: 0, opcode: 0x0, masked: true, length: 1) }
        #expect(Self.failCode(last) == 1009)

        // Control frames inside a message do not count towards its size.
        var withPings = Machine(maxMessageBytes: 100)
        _ = withPings.frame(fin: false, rsv: 0, opcode: 0x1, masked: true, length: 90)
        #expect(withPings.frame(fin: true, rsv: 0, opcode: 0x9, masked: true, length: 125) == .ping)
        #expect(withPings.frame(fin: true, rsv: 0, opcode: 0x0, masked: true, length: 10) == .finish(.text))
    }

    @Test func sizeIsCountedPerMessage() {
        var machine = Machine(maxMessageBytes: 100)
        for _ in 0..<5 {
            #expect(machine.frame(fin: false, rsv: 0, opcode: 0x1, masked: true, length: 60) == .start(.text))
            #expect(machine.frame(fin: true, rsv: 0, opcode: 0x0, masked: true, length: 40) == .finish(.text))
        }
    }

    // MARK: - Close payloads

    /// RFC 6455 §7.4: codes a peer may send.
    static func rfcValid(_ code: Int) -> Bool {
        (1000...1003).contains(code) || (1007...1014).contains(code) || (3000...4999).contains(code)
    }

    static func closePayload(_ code: Int, _ reason: [UInt8] = []) -> [UInt8] {
        [UInt8(code >> 8 & 0xFF), UInt8(code & 0xFF)] + reason
    }

    @Test func closeEmptyAndOneByte() {
        #expect(Machine.parseClose([UInt8]()) == .valid(code: nil, reason: ""))
        for byte: UInt8 in [0x00, 0x03, 0xE8, 0xFF] {
            #expect(Machine.parseClose([byte]) == .invalid(code: 1002))
        }
    }

    @Test func everyCloseCodeFrom0To5000() {
        var valid = 0
        for code in 0...5000 {
            let parsed = Machine.parseClose(Self.closePayload(code))
            if Self.rfcValid(code) {
                valid += 1
                #expect(parsed == .valid(code: UInt16(code), reason: ""), "code \(code)")
            } else {
                #expect(parsed == .invalid(code: 1002), "code \(code)")
            }
            #expect(Machine.isValidReceivedCloseCode(UInt16(code)) == Self.rfcValid(code), "code \(code)")
        }
        #expect(valid == 4 + 8 + 2000)
    }

    @Test(arguments: [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65_535, 0])
    func namedInvalidCloseCodes(code: Int) {
        #expect(Machine.parseClose(Self.closePayload(code)) == .invalid(code: 1002))
        #expect(Machine.parseClose(Self.closePayload(code, Array("bye".utf8))) == .invalid(code: 1002))
    }

    @Test func closeCodesAbove5000AreInvalid() {
        for code in stride(from: 5000, through: 65_535, by: 7) {
            #expect(Machine.parseClose(Self.closePayload(code)) == .invalid(code: 1002), "code \(code)")
        }
    }

    @Test func closeReasons() {
        #expect(Machine.parseClose(Self.closePayload(1000, Array("bye".utf8))) == .valid(code: 1000, reason: "bye"))
        let greek = "κόσμε"
        #expect(Machine.parseClose(Self.closePayload(3000, Array(greek.utf8))) == .valid(code: 3000, reason: greek))
        let longest = String(repeating: "é", count: 61) + "x"  // 123 bytes: the most a 125-byte close frame holds
        #expect(longest.utf8.count == 123)
        #expect(Machine.parseClose(Self.closePayload(4999, Array(longest.utf8)))
            == .valid(code: 4999, reason: longest))
        #expect(Machine.parseClose(Self.closePayload(1001, Array("🎉".utf8))) == .valid(code: 1001, reason: "🎉"))
    }

    static let invalidUTF8: [[UInt8]] = [
        [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64],
        [0xFF], [0xFE], [0x80], [0xBF], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],
        [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xCE], [0x61, 0xE1, 0xBD], [0xF0, 0x9F, 0x8E],
        [0x61, 0x62, 0x63, 0xC3],
    ]

    @Test(arguments: invalidUTF8)
    func invalidUTF8CloseReasonIs1007(reason: [UInt8]) {
        for code in [1000, 1001, 3000, 4999] {
            #expect(Machine.parseClose(Self.closePayload(code, reason)) == .invalid(code: 1007))
        }
    }

    @Test func closeCodeIsBigEndian() {
        #expect(Machine.parseClose([0x03, 0xE8]) == .valid(code: 1000, reason: ""))
        #expect(Machine.parseClose([0xE8, 0x03]) == .invalid(code: 1002))  // 59395
        #expect(Machine.parseClose([0x0B, 0xB8, 0x61]) == .valid(code: 3000, reason: "a"))
        // parseClose takes any collection of bytes, e.g. a slice.
        let framed: [UInt8] = [0xAA, 0x03, 0xE9, 0x62, 0xBB]
        #expect(Machine.parseClose(framed[1..<4]) == .valid(code: 1001, reason: "b"))
    }

    @Test func closeCodesTheShardSendsAreValidToReceive() {
        let sent: [UInt16] = [
            Machine.CloseCode.normal, Machine.CloseCode.goingAway, Machine.CloseCode.protocolError,
            Machine.CloseCode.unsupportedData, Machine.CloseCode.invalidPayload, Machine.CloseCode.policy,
            Machine.CloseCode.tooBig, Machine.CloseCode.internalError, Machine.CloseCode.restart,
            Machine.CloseCode.tryAgainLater,
        ]
        #expect(sent == [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013])
        for code in sent { #expect(Machine.isValidReceivedCloseCode(code)) }
    }
}

import NIOCore
import Testing
@testable import RoomRingRedis

/// The RESP2 decoder: every value kind, every split point, and hostile input (STYLE.md: parsers get every valid
/// input split at every byte offset).
struct RESPDecoderTests {
    /// Valid encodings and what they decode to.
    static let samples: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("+\r\n", .simpleString("")),
        ("-ERR unknown command 'FOO'\r\n", .error("ERR unknown command 'FOO'")),
        (":0\r\n", .integer(0)),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(.max)),
        (":-9223372036854775808\r\n", .integer(.min)),
        ("$5\r\nhello\r\n", .bulkString(ByteBuffer(string: "hello"))),
        ("$0\r\n\r\n", .bulkString(ByteBuffer())),
        ("$4\r\na\r\nb\r\n", .bulkString(ByteBuffer(string: "a\r\nb"))),
        ("$-1\r\n", .null),
        ("*-1\r\n", .null),
        ("*0\r\n", .array([])),
        ("*2\r\n$3\r\nfoo\r\n:7\r\n", .array([.bulkString(ByteBuffer(string: "foo")), .integer(7)])),
        ("*3\r\n$7\r\nmessage\r\n$10\r\nroom:lobby\r\n$11\r\n7 - {\"x\":1}\r\n",
         .array([.bulkString(ByteBuffer(string: "message")), .bulkString(ByteBuffer(string: "room:lobby")),
                 .bulkString(ByteBuffer(string: "7 - {\"x\":1}"))])),
        ("*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$2\r\nhi\r\n*0\r\n",
         .array([.array([.bulkString(ByteBuffer(string: "1-0")),
                         .array([.bulkString(ByteBuffer(string: "f")), .bulkString(ByteBuffer(string: "hi"))])]),
                 .array([])])),
        ("*3\r\n$-1\r\n*-1\r\n+x\r\n", .array([.null, .null, .simpleString("x")])),
        ("*1\r\n*1\r\n*1\r\n*0\r\n", .array([.array([.array([.array([])])])])),
    ]

    /// Decodes everything `bytes` holds, feeding it in pieces cut at `cuts`.
    static func decodeAll(_ bytes: [UInt8], cuts: [Int], limits: RESPDecoder.Limits = .init()) throws -> [RESPValue] {
        var decoder = RESPDecoder(limits: limits)
        var buffer = ByteBuffer()
        var values: [RESPValue] = []
        var start = 0
        for end in cuts + [bytes.count] where end >= start {
            buffer.writeBytes(bytes[start..<end])
            start = end
            while let value = try decoder.next(from: &buffer) { values.append(value) }
        }
        #expect(buffer.readableBytes == 0, "every byte of complete values is consumed")
        #expect(decoder.isAtBoundary)
        return values
    }

    @Test(arguments: samples.indices)
    func decodesEachSampleWhole(_ index: Int) throws {
        let (text, expected) = Self.samples[index]
        #expect(try Self.decodeAll(Array(text.utf8), cuts: []) == [expected])
    }

    @Test(arguments: samples.indices)
    func decodesEachSampleSplitAtEveryByte(_ index: Int) throws {
        let (text, expected) = Self.samples[index]
        let bytes = Array(text.utf8)
        for cut in 0...bytes.count {
            #expect(try Self.decodeAll(bytes, cuts: [cut]) == [expected], "split at \(cut) of \(text.debugDescription)")
        }
        // One byte at a time.
        #expect(try Self.decodeAll(bytes, cuts: Array(0...bytes.count)) == [expected])
    }

    @Test func allSamplesBackToBackSplitAtEveryPairOfOffsetsDecodeInOrder() throws {
        let stream = Self.samples.flatMap { Array($0.0.utf8) }
        let expected = Self.samples.map(\.1)
        for first in stride(from: 0, through: stream.count, by: 7) {
            for second in stride(from: first, through: stream.count, by: 13) {
                #expect(try Self.decodeAll(stream, cuts: [first, second]) == expected, "cuts \(first), \(second)")
            }
        }
    }

    @Test func incompleteInputConsumesNothingOfAPendingScalar() throws {
        var decoder = RESPDecoder()
        var buffer = ByteBuffer(string: "$10\r\nhello")
        #expect(try decoder.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 10)
        buffer.writeString("world\r\n")
        #expect(try decoder.next(from: &buffer) == .bulkString(ByteBuffer(string: "helloworld")))
        #expect(try decoder.next(from: &buffer) == nil)
        #expect(decoder.isAtBoundary)
    }

    @Test func arraysAreAssembledAcrossCallsAndConsumeTheirElementsAsTheyArrive() throws {
        var decoder = RESPDecoder()
        var buffer = ByteBuffer(string: "*3\r\n:1\r\n:2\r\n")
        #expect(try decoder.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 0, "complete elements of an open array are taken out")
        #expect(!decoder.isAtBoundary)
        buffer.writeString(":3\r\n+next\r\n")
        #expect(try decoder.next(from: &buffer) == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(try decoder.next(from: &buffer) == .simpleString("next"))
    }

    @Test func encoderOutputDecodesToTheSameValue() throws {
        for (_, value) in Self.samples {
            var bytes = RESPEncoder.bytes(value)
            var decoder = RESPDecoder()
            #expect(try decoder.next(from: &bytes) == value)
            #expect(bytes.readableBytes == 0)
        }
    }

    @Test func commandsEncodeAsArraysOfBulkStrings() throws {
        let bytes = RESPEncoder.bytes(RESPCommand("SET", "key", "a b\r\n", 42))
        #expect(String(buffer: bytes) == "*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\na b\r\n\r\n$2\r\n42\r\n")
        var copy = bytes
        var decoder = RESPDecoder()
        let decoded = try decoder.next(from: &copy)
        #expect(decoded?.array?.compactMap(\.string) == ["SET", "key", "a b\r\n", "42"])
    }

    // MARK: - Hostile and malformed input

    /// Malformed inputs, the error each must raise, and the limits in force.
    static let malformed: [(String, RESPDecodingError)] = [
        ("?x\r\n", .invalidType),
        ("\r\n", .invalidType),
        ("hello\r\n", .invalidType),
        (":\r\n", .invalidInteger),
        (":12a\r\n", .invalidInteger),
        (":+5\r\n", .invalidInteger),
        (":-\r\n", .invalidInteger),
        (": 1\r\n", .invalidInteger),
        (":9223372036854775808\r\n", .invalidInteger),
        (":-9223372036854775809\r\n", .invalidInteger),
        (":99999999999999999999999\r\n", .invalidInteger),
        ("$\r\n", .invalidLength),
        ("$-2\r\n", .invalidLength),
        ("$abc\r\n", .invalidLength),
        ("$1.5\r\n", .invalidLength),
        ("*-5\r\n", .invalidLength),
        ("*x\r\n", .invalidLength),
        ("$3\r\nabcd\r\n", .missingTerminator),
        ("$3\r\nabc\n\r", .missingTerminator),
        ("$3\r\nabc\r\r", .missingTerminator),
        ("+OK\n", .invalidLine),
        ("+O\rK\r\n", .invalidLine),
        ("-ERR\n", .invalidLine),
        ("*1\r\n+ok\n", .invalidLine),
        ("*2\r\n:1\r\n?\r\n", .invalidType),
    ]

    @Test(arguments: malformed.indices)
    func malformedInputRaisesATypedErrorAtAnySplit(_ index: Int) throws {
        let (text, expected) = Self.malformed[index]
        let bytes = Array(text.utf8)
        for cut in 0...bytes.count {
            #expect(throws: expected, "\(text.debugDescription) split at \(cut)") {
                _ = try Self.decodeAll(bytes, cuts: [cut])
            }
        }
    }

    @Test func afterAnErrorEveryCallThrowsTheSameError() throws {
        var decoder = RESPDecoder()
        var buffer = ByteBuffer(string: "!oops\r\n+OK\r\n")
        #expect(throws: RESPDecodingError.invalidType) { try decoder.next(from: &buffer) }
        var fresh = ByteBuffer(string: "+OK\r\n")
        #expect(throws: RESPDecodingError.invalidType) { try decoder.next(from: &fresh) }
    }

    @Test func bulkLengthAboveTheLimitIsRefusedBeforeAnyBodyArrives() throws {
        let limits = RESPDecoder.Limits(maxBulkLength: 10)
        #expect(try Self.decodeAll(Array("$10\r\n0123456789\r\n".utf8), cuts: [], limits: limits).count == 1)
        var decoder = RESPDecoder(limits: limits)
        var buffer = ByteBuffer(string: "$11\r\n")
        #expect(throws: RESPDecodingError.bulkTooLong) { try decoder.next(from: &buffer) }
        // A declared length near Int.max neither overflows nor allocates.
        var huge = RESPDecoder()
        var hugeBuffer = ByteBuffer(string: "$9223372036854775807\r\n")
        #expect(throws: RESPDecodingError.bulkTooLong) { try huge.next(from: &hugeBuffer) }
    }

    @Test func arrayCountAboveTheLimitIsRefused() throws {
        var decoder = RESPDecoder(limits: .init(maxArrayLength: 3))
        var ok = ByteBuffer(string: "*3\r\n:1\r\n:2\r\n:3\r\n")
        #expect(try decoder.next(from: &ok) != nil)
        var buffer = ByteBuffer(string: "*4\r\n")
        #expect(throws: RESPDecodingError.arrayTooLong) { try decoder.next(from: &buffer) }
        var defaults = RESPDecoder()
        var hostile = ByteBuffer(string: "*2147483647\r\n")
        #expect(throws: RESPDecodingError.arrayTooLong) { try defaults.next(from: &hostile) }
    }

    @Test func nestingDeeperThanTheLimitIsRefused() throws {
        let limits = RESPDecoder.Limits(maxDepth: 4)
        let four = String(repeating: "*1\r\n", count: 3) + "*0\r\n"
        #expect(try Self.decodeAll(Array(four.utf8), cuts: [], limits: limits).count == 1)
        let five = String(repeating: "*1\r\n", count: 4) + "*0\r\n"
        #expect(throws: RESPDecodingError.tooDeep) { _ = try Self.decodeAll(Array(five.utf8), cuts: [], limits: limits) }
        // The default depth bound holds against a long run of nested headers.
        let deep = String(repeating: "*1\r\n", count: 100_000)
        #expect(throws: RESPDecodingError.tooDeep) { _ = try Self.decodeAll(Array(deep.utf8), cuts: []) }
    }

    @Test func aLineWithoutCRLFIsRefusedOnceItPassesTheLimitEvenFedByteByByte() throws {
        let limits = RESPDecoder.Limits(maxLineLength: 8)
        #expect(try Self.decodeAll(Array("+12345678\r\n".utf8), cuts: [], limits: limits) == [.simpleString("12345678")])
        #expect(throws: RESPDecodingError.lineTooLong) {
            _ = try Self.decodeAll(Array("+123456789\r\n".utf8), cuts: [], limits: limits)
        }
        // A 1 MiB line with no CRLF, one byte per call: refused after the limit, in linear time.
        var decoder = RESPDecoder()
        var buffer = ByteBuffer(string: "+")
        var thrown: RESPDecodingError?
        for _ in 0..<(1 << 20) {
            buffer.writeInteger(UInt8(ascii: "a"))
            do { _ = try decoder.next(from: &buffer) } catch {
                thrown = error
                break
            }
        }
        #expect(thrown == .lineTooLong)
        #expect(buffer.readableBytes <= 64 * 1024 + 3)
    }

    @Test func randomBytesNeverCrashAndEitherDecodeWaitOrThrow() throws {
        var generator = SplitMix64(seed: 0x5EED)
        let alphabet = Array("+-:$*\r\n0123456789-ab".utf8)
        for _ in 0..<20_000 {
            let length = Int(generator.next() % 24)
            let bytes = (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            var decoder = RESPDecoder(limits: .init(maxBulkLength: 64, maxArrayLength: 64, maxDepth: 4))
            var buffer = ByteBuffer(bytes: bytes)
            do {
                while try decoder.next(from: &buffer) != nil {}
            } catch {
                continue
            }
        }
    }

    @Test func randomValuesRoundTripThroughEncoderAndSplitDecoder() throws {
        var generator = SplitMix64(seed: 42)
        for _ in 0..<300 {
            let values = (0..<4).map { _ in Self.randomValue(&generator, depth: 0) }
            var stream = ByteBuffer()
            for value in values { RESPEncoder.encode(value, into: &stream) }
            let bytes = Array(stream.readableBytesView)
            let cuts = (0..<3).map { _ in Int(generator.next() % UInt64(bytes.count + 1)) }.sorted()
            #expect(try Self.decodeAll(bytes, cuts: cuts) == values)
        }
    }

    static func randomValue(_ generator: inout SplitMix64, depth: Int) -> RESPValue {
        switch generator.next() % (depth < 3 ? 6 : 5) {
        case 0: return .simpleString(String(repeating: "s", count: Int(generator.next() % 5)))
        case 1: return .error("ERR " + String(generator.next() % 1000))
        case 2: return .integer(Int64(bitPattern: generator.next()))
        case 3:
            let bytes = (0..<Int(generator.next() % 40)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            return .bulkString(ByteBuffer(bytes: bytes))
        case 4: return .null
        default: return .array((0..<Int(generator.next() % 4)).map { _ in randomValue(&generator, depth: depth + 1) })
        }
    }
}

/// A small deterministic generator for reproducible fuzzing.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

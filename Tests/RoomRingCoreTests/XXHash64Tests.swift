import Testing

@testable import RoomRingCore

/// xxHash64 must match the published algorithm bit for bit: every proxy and shard routes with it, and a ring written
/// today must route the same way in every future build (DESIGN.md §2).
///
/// Expected values come from the xxHash reference implementation (`xxhsum` sanity vectors) and were cross-checked
/// with the `xxhash` Python package (4.1.0, which wraps the reference C code).
@Suite("XXHash64")
struct XXHash64Tests {
    // MARK: Short published vectors

    @Test(
        "published vectors, seed 0",
        arguments: [
            ("", 0xEF46_DB37_51D8_E999 as UInt64),
            ("a", 0xD24E_C4F1_A98C_6E5B),
            ("abc", 0x44BC_2CF5_AD77_0999),
            ("message digest", 0x066E_D728_FCEE_B3BE),
            ("abcdefghijklmnopqrstuvwxyz", 0xCFE1_F278_FA89_835C),
            ("Nobody inspects the spammish repetition", 0xFBCE_A83C_8A37_8BF1),
            ("The quick brown fox jumps over the lazy dog", 0x0B24_2D36_1FDA_71BC),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                0xE04A_477F_19EE_145D
            ),
        ])
    func publishedVectors(input: String, expected: UInt64) {
        #expect(XXHash64.hash(input) == expected)
        #expect(XXHash64.hash(Array(input.utf8)) == expected)
    }

    @Test(
        "published vectors, non-zero seeds",
        arguments: [
            ("", 1 as UInt64, 0xD5AF_BA13_36A3_BE4B as UInt64),
            ("a", 1, 0xDEC2_BC81_C3CD_46C6),
            ("abc", 1, 0xBEA9_CA81_9932_8908),
            ("Nobody inspects the spammish repetition", 1, 0x43F4_2544_8D95_4DB6),
            ("abc", 0x9E37_79B1_85EB_CA87, 0xA7CB_2AAC_405E_36C7),
            ("abcdefghijklmnopqrstuvwxyz", 0x9E37_79B1_85EB_CA87, 0x45AF_4D06_F721_14D8),
            ("Nobody inspects the spammish repetition", UInt64.max, 0xAA61_085C_FFB4_5675),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890", 1,
                0x0B79_5E8B_945F_7051
            ),
        ])
    func seededVectors(input: String, seed: UInt64, expected: UInt64) {
        #expect(XXHash64.hash(input, seed: seed) == expected)
        #expect(XXHash64.hash(Array(input.utf8), seed: seed) == expected)
    }

    @Test("a non-zero seed changes the hash")
    func seedMatters() {
        for input in ["", "a", "lobby", String(repeating: "x", count: 100)] {
            #expect(XXHash64.hash(input, seed: 0) != XXHash64.hash(input, seed: 1))
            #expect(XXHash64.hash(input) == XXHash64.hash(input, seed: 0))
        }
    }

    // MARK: xxhsum sanity buffer: every length class (tails of 1/4/8 bytes, 32-byte stripes, stripes + tails)

    /// The buffer of the reference `xxhsum` self-test: byte i is the top byte of `PRIME32 * PRIME64^i`.
    static let sanityBuffer: [UInt8] = {
        var generator: UInt64 = 2_654_435_761
        var buffer: [UInt8] = []
        buffer.reserveCapacity(2367)
        for _ in 0..<2367 {
            buffer.append(UInt8(truncatingIfNeeded: generator >> 56))
            generator = generator &* 11_400_714_785_074_694_797
        }
        return buffer
    }()

    /// (length, seed 0, seed PRIME32 = 2654435761)
    static let sanityVectors: [(Int, UInt64, UInt64)] = [
        (0, 0xEF46DB3751D8E999, 0xAC75FDA2929B17EF),
        (1, 0xE934A84ADB052768, 0x5014607643A9B4C3),
        (2, 0x5D48CD60A77E23FF, 0x9E93152232D54A39),
        (3, 0xFF7E1959CB50794A, 0xAA8584E83660F7D1),
        (4, 0x9136A0DCA57457EE, 0xCAAB286BD8E9FDB5),
        (5, 0x9B046FB1397F09A5, 0x2AF5249930F984EC),
        (7, 0x6C83909A9F01ED25, 0xF98D03B1AD6F9293),
        (8, 0xCDBCF538E71D1348, 0xFE0C047A5353CDAC),
        (9, 0x554B1AE991EDA6B6, 0x7908265248F6D73F),
        (11, 0x6345D5746F35DA70, 0xEAA08A8C8BE3CCCF),
        (12, 0x0723BF50086EAD9A, 0x8252819F4E506951),
        (13, 0xC2E5013E3C40BCF7, 0x4DF437A291CB1039),
        (14, 0x8282DCC4994E35C8, 0xC3BD6BF63DEB6DF0),
        (15, 0x180719316D622D84, 0xD61105C20E91F99F),
        (16, 0x98C90B57FDFCB55C, 0xC900AD2D536B607E),
        (17, 0x0D39A2D051A30C2C, 0x495CD68A647C7A22),
        (23, 0xD2460ECC840B74DD, 0x4B44E8DE7A396773),
        (24, 0xF75A6DEA42DC5BF4, 0x8B7C67EB59778E22),
        (31, 0x299B39A290E6D783, 0xDA673D5FEB5C1D79),
        (32, 0x18B216492BB44B70, 0xB3F33BDF93ADE409),
        (33, 0x55C8DC3E578F5B59, 0xE92C292F64BC3071),
        (35, 0xCB0AA8E2A7A29707, 0xECE3515C236504C7),
        (36, 0x0AE67584084DC6A4, 0x57C73F9E3A6FC2C6),
        (39, 0xB888CAF07592B1B3, 0x602E74D43465AC3D),
        (40, 0x23B3810D7D8B1731, 0x5A57F246772BC540),
        (47, 0x84A42E167CBD1FEF, 0xA474B31A5132A541),
        (48, 0xFD0FEEAC7A939933, 0x6FFE2F43A24C2302),
        (63, 0xA9EFBE0FA0F3F4E7, 0x6C911FADB05B6FC2),
        (64, 0xEF558F8ACAC2B5CD, 0xB5EEBA99264CC44F),
        (65, 0xDE0F20DC2631AF7A, 0xD3F6FF3941E310CA),
        (95, 0xFF9F46BDCC644624, 0x72E75A560EF624A3),
        (96, 0x105064E743EDD1D9, 0x8FF0B4ABEE6F03CC),
        (97, 0x097B16E4E9B0A2E3, 0x9704E5147FDCC4F4),
        (127, 0x3C7A21119AA662B0, 0xB0D6DC189C06CEED),
        (128, 0x90CA021457D96DC5, 0xED9340A202BCD1CF),
        (129, 0x41C280132D697ABA, 0x1668B87489935FF5),
        (222, 0xB641AE8CB691C174, 0x20CB8AB7AE10C14A),
        (1000, 0x52BD1358F22E9EF7, 0x72751A2408017E26),
        (2367, 0xA82418DDEC0EA581, 0xA36A93C18052673A),
    ]

    @Test("sanity buffer starts like the reference one")
    func sanityBufferPrefix() {
        let prefix: [UInt8] = [0x00, 0x52, 0x92, 0x9B, 0xB7, 0x32, 0xA3, 0x24]
        #expect(Array(Self.sanityBuffer.prefix(8)) == prefix)
    }

    @Test("xxhsum sanity vectors, seed 0 and seed PRIME32, every length class")
    func sanityVectorsMatch() {
        for (length, seed0, seedPrime) in Self.sanityVectors {
            let input = Self.sanityBuffer[0..<length]
            #expect(XXHash64.hash(input) == seed0, "length \(length), seed 0")
            #expect(XXHash64.hash(input, seed: 2_654_435_761) == seedPrime, "length \(length), seed PRIME32")
        }
    }

    @Test("long input (1 KiB of 0...255 repeated)")
    func longInput() {
        let bytes = Array((0..<1024).map { UInt8(truncatingIfNeeded: $0) })
        #expect(XXHash64.hash(bytes) == 0x6F39_14F1_8FE4_DF57)
    }

    // MARK: String and collection entry points agree

    @Test(
        "hash(String) equals hash(bytes) of the same UTF-8",
        arguments: [
            ("s1#0", 0xA960_EA41_DA02_9655 as UInt64),
            ("s2#159", 0x7B92_9E5B_7F21_7997),
            ("lobby", 0x8383_0691_91DD_F592),
            ("héllo wörld 🎉", 0x3193_F142_1B6E_589B),
            ("日本語のルーム", 0x5537_1BD7_973B_71D3),
        ])
    func stringEqualsBytes(input: String, expected: UInt64) {
        #expect(XXHash64.hash(input) == expected)
        #expect(XXHash64.hash(Array(input.utf8)) == expected)
        #expect(XXHash64.hash(input.utf8) == expected)
        // A string that is not stored natively contiguous (a substring's copy, a concatenation) hashes the same.
        let padded = "<<" + input + ">>"
        let middle = padded.dropFirst(2).dropLast(2)
        #expect(XXHash64.hash(String(middle)) == expected)
        #expect(XXHash64.hash(middle.utf8) == expected)
    }

    /// A collection with no contiguous storage, so the hash must take its copying path.
    struct Scattered: Collection {
        let storage: [UInt8]
        var startIndex: Int { 0 }
        var endIndex: Int { storage.count }
        func index(after i: Int) -> Int { i + 1 }
        subscript(position: Int) -> UInt8 { storage[position] }
    }

    @Test("non-contiguous and sliced collections hash like an array of the same bytes")
    func nonContiguousCollections() {
        for (length, seed0, seedPrime) in Self.sanityVectors where length <= 222 {
            let array = Array(Self.sanityBuffer[0..<length])
            let scattered = Scattered(storage: array)
            #expect(scattered.withContiguousStorageIfAvailable { _ in true } == nil)
            #expect(XXHash64.hash(scattered) == seed0, "custom collection, length \(length)")
            #expect(XXHash64.hash(scattered, seed: 2_654_435_761) == seedPrime)
            #expect(XXHash64.hash(array.lazy.map { $0 }) == seed0, "lazy map, length \(length)")
            let backwards: [UInt8] = array.reversed()
            let view: ReversedCollection<[UInt8]> = backwards.reversed()
            #expect(XXHash64.hash(view) == seed0, "reversed view, length \(length)")
            // A slice that does not start at index 0.
            let shifted = [0xAA, 0xBB, 0xCC] + array + [0xDD]
            #expect(XXHash64.hash(shifted[3..<(3 + length)]) == seed0, "slice, length \(length)")
        }
    }

    @Test("every single-byte change alters the hash")
    func sensitivity() {
        let base = Array(Self.sanityBuffer[0..<100])
        let baseHash = XXHash64.hash(base)
        var seen: Set<UInt64> = [baseHash]
        for index in base.indices {
            var changed = base
            changed[index] ^= 0x01
            seen.insert(XXHash64.hash(changed))
        }
        #expect(seen.count == base.count + 1)
        // Length is mixed in: trailing zero bytes are not ignored.
        #expect(XXHash64.hash([UInt8]()) != XXHash64.hash([0 as UInt8]))
        #expect(XXHash64.hash([0 as UInt8]) != XXHash64.hash([0, 0] as [UInt8]))
    }
}

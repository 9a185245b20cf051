/// xxHash64 (https://xxhash.com), the ring's hash.
///
/// Routing must give the same answer in every process, on every machine, forever, so it uses a published,
/// unseeded algorithm rather than Swift's `Hasher` (which is seeded per process).
public enum XXHash64 {
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    /// Hashes the UTF-8 bytes of a string.
    public static func hash(_ string: String, seed: UInt64 = 0) -> UInt64 {
        var string = string
        return string.withUTF8 { hash(bytes: $0, seed: seed) }
    }

    /// Hashes a byte collection.
    public static func hash(_ bytes: some Collection<UInt8>, seed: UInt64 = 0) -> UInt64 {
        if let fast = bytes.withContiguousStorageIfAvailable({ hash(bytes: $0, seed: seed) }) {
            return fast
        }
        return Array(bytes).withUnsafeBufferPointer { hash(bytes: $0, seed: seed) }
    }

    private static func hash(bytes: UnsafeBufferPointer<UInt8>, seed: UInt64) -> UInt64 {
        let count = bytes.count
        var index = 0
        var result: UInt64
        if count >= 32 {
            var v1 = seed &+ prime1 &+ prime2
            var v2 = seed &+ prime2
            var v3 = seed
            var v4 = seed &- prime1
            while index + 32 <= count {
                v1 = round(v1, read64(bytes, index))
                v2 = round(v2, read64(bytes, index + 8))
                v3 = round(v3, read64(bytes, index + 16))
                v4 = round(v4, read64(bytes, index + 24))
                index += 32
            }
            result = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            result = merge(result, v1)
            result = merge(result, v2)
            result = merge(result, v3)
            result = merge(result, v4)
        } else {
            result = seed &+ prime5
        }
        result &+= UInt64(count)
        while index + 8 <= count {
            result ^= round(0, read64(bytes, index))
            result = rotl(result, 27) &* prime1 &+ prime4
            index += 8
        }
        if index + 4 <= count {
            result ^= UInt64(read32(bytes, index)) &* prime1
            result = rotl(result, 23) &* prime2 &+ prime3
            index += 4
        }
        while index < count {
            result ^= UInt64(bytes[index]) &* prime5
            result = rotl(result, 11) &* prime1
            index += 1
        }
        result ^= result >> 33
        result &*= prime2
        result ^= result >> 29
        result &*= prime3
        result ^= result >> 32
        return result
    }

    @inline(__always)
    private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* prime2, 31) &* prime1
    }

    @inline(__always)
    private static func merge(_ acc: UInt64, _ value: UInt64) -> UInt64 {
        (acc ^ round(0, value)) &* prime1 &+ prime4
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    @inline(__always)
    private static func read64(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(p[i + k]) << (8 * UInt64(k)) }
        return v
    }

    @inline(__always)
    private static func read32(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 { v |= UInt32(p[i + k]) << (8 * UInt32(k)) }
        return v
    }
}

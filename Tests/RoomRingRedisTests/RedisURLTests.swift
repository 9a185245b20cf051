import NIOCore
import Testing
import RoomRingRedis

struct RedisURLTests {
    @Test func parsesHostPortDatabaseAndCredentials() throws {
        #expect(try RedisURL(parsing: "redis://127.0.0.1:6379") == RedisURL(host: "127.0.0.1", port: 6379))
        #expect(try RedisURL(parsing: "redis://localhost") == RedisURL(host: "localhost", port: 6379))
        #expect(try RedisURL(parsing: "redis://cache.internal:6380/3")
            == RedisURL(host: "cache.internal", port: 6380, database: 3))
        #expect(try RedisURL(parsing: "redis://h:1/") == RedisURL(host: "h", port: 1))
        #expect(try RedisURL(parsing: "redis://:s3cret@127.0.0.1:7000/2")
            == RedisURL(host: "127.0.0.1", port: 7000, database: 2, password: "s3cret"))
        #expect(try RedisURL(parsing: "redis://app:p%40ss%3Aword@10.0.0.5")
            == RedisURL(host: "10.0.0.5", username: "app", password: "p@ss:word"))
        #expect(try RedisURL(parsing: "redis://onlypassword@host") == RedisURL(host: "host", password: "onlypassword"))
        #expect(try RedisURL(parsing: "redis://[::1]:6390/1") == RedisURL(host: "::1", port: 6390, database: 1))
        #expect(try RedisURL(parsing: "redis://[::1]") == RedisURL(host: "::1"))
    }

    @Test(arguments: [
        "http://127.0.0.1:6379", "rediss://127.0.0.1:6379", "redis://", "redis://:6379", "redis://host:0",
        "redis://host:65536", "redis://host:port", "redis://host:6379/x", "redis://host:6379/-1",
        "redis://::1:6379", "redis://[::1", "redis://[::1]x", "redis://host?db=1", "redis://a:%zz@host",
        "127.0.0.1:6379",
    ])
    func refusesWhatItCannotUse(_ text: String) {
        #expect(throws: RedisURLError.self) { try RedisURL(parsing: text) }
    }

    @Test func descriptionMasksThePassword() throws {
        #expect(try RedisURL(parsing: "redis://app:secret@h:1/2").description == "redis://app:***@h:1/2")
        #expect(try RedisURL(parsing: "redis://:secret@h").description == "redis://:***@h:6379")
        #expect(try RedisURL(parsing: "redis://[::1]:7").description == "redis://[::1]:7")
        #expect(!"\(try RedisURL(parsing: "redis://:hunter2@h"))".contains("hunter2"))
    }
}

struct RedisBackoffTests {
    @Test func delaysGrowExponentiallyWithinHalfToFullCapAndStopAtTheMaximum() {
        let backoff = RedisBackoff(initial: .milliseconds(100), maximum: .seconds(2))
        for attempt in 0..<50 {
            let cap = min(100 * (1 << min(attempt, 20)), 2000)
            let low = backoff.delay(attempt: attempt, random: 0).nanoseconds
            let high = backoff.delay(attempt: attempt, random: 0.999_999).nanoseconds
            #expect(low == Int64(cap) * 1_000_000 / 2, "attempt \(attempt)")
            #expect(high <= Int64(cap) * 1_000_000 && high >= Int64(cap) * 1_000_000 * 99 / 100)
        }
        #expect(backoff.delay(attempt: Int.max, random: 0.5) <= .seconds(2))
        #expect(backoff.delay(attempt: -3, random: 0) == .milliseconds(50))
    }

    @Test func jitterSpreadsClientsThatFailedTogether() {
        let backoff = RedisBackoff()
        let delays = Set((0..<100).map { _ in backoff.delay(attempt: 5, random: Double.random(in: 0..<1)).nanoseconds })
        #expect(delays.count > 50)
    }
}

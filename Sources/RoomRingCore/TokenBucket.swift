/// A token-bucket rate limiter; the caller passes the time, so it is tested without a clock.
public struct TokenBucket: Hashable, Sendable {
    /// Tokens added per second.
    public let rate: Double
    /// Largest burst.
    public let burst: Double
    private var tokens: Double
    private var last: UInt64

    /// - Parameters:
    ///   - rate: sustained events per second.
    ///   - burst: events allowed at once (the bucket starts full).
    ///   - now: current time in nanoseconds (any monotonic origin).
    public init(rate: Double, burst: Double, now: UInt64) {
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now
    }

    /// Takes one token if available.
    public mutating func take(now: UInt64) -> Bool {
        if now > last {
            tokens = min(burst, tokens + Double(now - last) / 1e9 * rate)
            last = now
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

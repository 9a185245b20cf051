import NIOCore

/// Reconnect delays: exponential with "equal jitter" (half fixed, half random), so many clients that lost the
/// same server do not all come back at the same instant, and none retries in a tight loop.
///
/// Pure: the caller supplies the random fraction.
public struct RedisBackoff: Hashable, Sendable {
    /// Delay cap for the first retry (default 50 ms).
    public var initial: TimeAmount
    /// Largest delay (default 2 s).
    public var maximum: TimeAmount

    /// - Parameters:
    ///   - initial: first retry's delay cap, default 50 ms.
    ///   - maximum: largest delay, default 2 s.
    public init(initial: TimeAmount = .milliseconds(50), maximum: TimeAmount = .seconds(2)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before retry number `attempt` (0 for the first retry after a failure).
    /// - Parameters:
    ///   - attempt: failures so far minus one.
    ///   - random: a fraction in `0..<1`.
    /// - Returns: a delay in `cap/2 ... cap`, where `cap = min(maximum, initial * 2^attempt)`.
    public func delay(attempt: Int, random: Double) -> TimeAmount {
        let initialNanos = max(1, initial.nanoseconds)
        let shift = min(max(0, attempt), 40)
        let (grown, overflow) = initialNanos.multipliedReportingOverflow(by: Int64(1) << shift)
        let cap = overflow ? maximum.nanoseconds : min(maximum.nanoseconds, grown)
        let half = cap / 2
        let jitter = Int64(Double(cap - half) * min(max(random, 0), 1))
        return .nanoseconds(half + jitter)
    }
}

import Synchronization

/// A queue of events with a timed `next`, safe to use from any thread.
///
/// Unlike `AsyncStream`, giving up on one `next` (a timeout) does not end the stream, which is what tests and
/// clients waiting for "the next message, or fail after 5 s" need.
public final class EventInbox<Event: Sendable>: Sendable {
    /// `next` gave up waiting.
    public struct Timeout: Error, CustomStringConvertible {
        public var description: String { "no event within the timeout" }
    }

    private struct State {
        var queue: [Event] = []
        var head = 0
        var waiter: (id: UInt64, continuation: CheckedContinuation<Event, any Error>)?
        var nextWaiter: UInt64 = 0
        /// A `next` whose timer fired before it started waiting: it must fail at once, not wait forever.
        var expired: UInt64?
    }

    private let state = Mutex(State())

    public init() {}

    /// Adds an event, waking a waiting `next`.
    public func push(_ event: Event) {
        let waiter: CheckedContinuation<Event, any Error>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter.continuation
            }
            state.queue.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    /// Events queued and not yet taken.
    public var pendingCount: Int { state.withLock { $0.queue.count - $0.head } }

    /// The next event, waiting at most `timeout`.
    /// - Throws: ``Timeout``.
    public func next(timeout: Duration = .seconds(5)) async throws -> Event {
        let id: UInt64 = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            let waiter = state.withLock { state -> CheckedContinuation<Event, any Error>? in
                guard let waiter = state.waiter, waiter.id == id else {
                    if state.nextWaiter == id { state.expired = id }
                    return nil
                }
                state.waiter = nil
                return waiter.continuation
            }
            waiter?.resume(throwing: Timeout())
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            let ready: Event? = state.withLock { state in
                if state.head < state.queue.count {
                    let event = state.queue[state.head]
                    state.head += 1
                    if state.head > 256, state.head * 2 > state.queue.count {
                        state.queue.removeFirst(state.head)
                        state.head = 0
                    }
                    return event
                }
                if state.expired == id { return nil }
                state.waiter = (id, continuation)
                return nil
            }
            if let ready {
                continuation.resume(returning: ready)
            } else if state.withLock({ $0.expired == id && $0.waiter?.id != id }) {
                continuation.resume(throwing: Timeout())
            }
        }
    }
}

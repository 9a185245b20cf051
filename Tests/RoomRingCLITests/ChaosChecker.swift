import RoomRingClient
import Synchronization

/// What one chaos client saw, in order: connections (with the hello's seq and whether history was resumed),
/// deliveries, and the seqs its own sends were acknowledged with.
struct ChaosHistory: Sendable {
    enum Event: Sendable, Equatable {
        case connected(shard: String, seq: UInt64, resumed: Bool)
        case delivered(seq: UInt64, text: String)
    }

    var client: String
    var room: String
    var events: [Event] = []
    /// Text → seq of every acknowledged send.
    var acked: [String: UInt64] = [:]
}

/// Checks the invariants of DESIGN.md §3 over every client's history. Pure, so it is tested on its own with
/// histories that break each rule (a checker that cannot fail proves nothing).
///
/// A room's *incarnation* changes when a client is told `resumed: false` (its shard lost the history): seq numbering
/// starts again, and clients count incarnations by those notices.
struct ChaosChecker {
    struct Report: Sendable {
        var problems: [String] = []
        var deliveries = 0
        var acked = 0
        var resets = 0
        var connections = 0
    }

    /// - Parameter finalSeq: each room's seq on its owner at the end, for the catch-up check (nil skips it).
    static func check(_ histories: [ChaosHistory], finalSeq: [String: UInt64]? = nil) -> Report {
        var report = Report()
        // (room, incarnation, seq) → text, across every client of the room.
        var agreed: [String: [Int: [UInt64: (text: String, client: String)]]] = [:]
        var finalByClient: [(ChaosHistory, incarnation: Int, last: UInt64)] = []
        for history in histories {
            var incarnation = -1
            var expected: UInt64 = 0
            var seenTexts: [String: UInt64] = [:]
            var delivered: [String: (incarnation: Int, seq: UInt64)] = [:]
            for event in history.events {
                switch event {
                case .connected(_, let seq, let resumed):
                    report.connections += 1
                    if incarnation < 0 || !resumed {
                        if incarnation >= 0 { report.resets += 1 }
                        incarnation += 1
                        expected = seq
                    } else if seq < expected {
                        report.problems.append("\(history.client): resumed at seq \(seq) behind its own \(expected)")
                    }
                case .delivered(let seq, let text):
                    report.deliveries += 1
                    if seq != expected + 1 {
                        report.problems.append("\(history.client) in \(history.room): seq \(seq) after \(expected)"
                            + (seq <= expected ? " (duplicate or out of order)" : " (gap)"))
                    }
                    expected = max(expected, seq)
                    if let earlier = seenTexts[text] {
                        report.problems.append("\(history.client): \(text) delivered twice (seq \(earlier), \(seq))")
                    }
                    seenTexts[text] = seq
                    delivered[text] = (incarnation, seq)
                    let other = agreed[history.room, default: [:]][incarnation, default: [:]][seq]
                    if let other, other.text != text {
                        report.problems.append("\(history.room) seq \(seq) (incarnation \(incarnation)) is \(text) for "
                            + "\(history.client) but \(other.text) for \(other.client)")
                    } else {
                        agreed[history.room, default: [:]][incarnation, default: [:]][seq] = (text, history.client)
                    }
                }
            }
            for (text, seq) in history.acked {
                report.acked += 1
                // The sender is a member: its own message reaches it, at the acked seq, exactly once.
                guard let own = delivered[text] else {
                    report.problems.append("\(history.client): \(text) acked at \(seq) but never delivered to it")
                    continue
                }
                if own.seq != seq {
                    report.problems.append("\(history.client): \(text) acked at \(seq) but delivered at \(own.seq)")
                }
            }
            finalByClient.append((history, incarnation, expected))
        }
        if let finalSeq {
            for (history, _, last) in finalByClient {
                guard let target = finalSeq[history.room] else {
                    report.problems.append("\(history.room) is held by no shard at the end")
                    continue
                }
                if last != target {
                    report.problems.append("\(history.client) ends at seq \(last), its room at \(target)")
                }
            }
        }
        return report
    }
}

/// Thread-safe recorder for one ``RoomClient``.
final class ChaosRecorder: Sendable {
    let client: String
    let room: String
    private let history: Mutex<ChaosHistory>

    init(client: String, room: String) {
        self.client = client
        self.room = room
        self.history = Mutex(ChaosHistory(client: client, room: room))
    }

    func state(_ state: RoomClient.State) {
        guard case .connected(let shard, let seq, let resumed) = state else { return }
        history.withLock { $0.events.append(.connected(shard: shard, seq: seq, resumed: resumed)) }
    }

    func delivered(seq: UInt64, text: String) {
        history.withLock { $0.events.append(.delivered(seq: seq, text: text)) }
    }
    func acked(_ text: String, seq: UInt64) { history.withLock { $0.acked[text] = seq } }

    var snapshot: ChaosHistory { history.withLock { $0 } }

    /// The seq this client is at, as the checker counts it.
    var lastSeq: UInt64 {
        history.withLock { history in
            var last: UInt64 = 0
            var started = false
            for event in history.events {
                switch event {
                case .delivered(let seq, _): last = seq
                case .connected(_, let seq, let resumed) where !resumed || !started:
                    last = seq
                    started = true
                default: continue
                }
            }
            return last
        }
    }

    /// Connections after the first `since` events (for "what happened in this phase").
    func connections(after index: Int) -> [ChaosHistory.Event] {
        history.withLock { history in
            history.events.dropFirst(index).filter { if case .connected = $0 { true } else { false } }
        }
    }

    var eventCount: Int { history.withLock { $0.events.count } }
}

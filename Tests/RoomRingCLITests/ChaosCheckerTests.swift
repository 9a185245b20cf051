import Testing

/// The chaos checker must be able to fail: each rule broken on purpose in a small history.
@Suite struct ChaosCheckerTests {
    typealias E = ChaosHistory.Event

    static func history(_ client: String, _ events: [E], acked: [String: UInt64] = [:]) -> ChaosHistory {
        ChaosHistory(client: client, room: "r", events: events, acked: acked)
    }

    static let good = [
        history("a", [.connected(shard: "s1", seq: 0, resumed: true), .delivered(seq: 1, text: "a#1"),
                      .delivered(seq: 2, text: "b#1"), .connected(shard: "s2", seq: 2, resumed: true),
                      .delivered(seq: 3, text: "a#2")], acked: ["a#1": 1, "a#2": 3]),
        history("b", [.connected(shard: "s1", seq: 0, resumed: true), .delivered(seq: 1, text: "a#1"),
                      .connected(shard: "s2", seq: 2, resumed: true), .delivered(seq: 2, text: "b#1"),
                      .delivered(seq: 3, text: "a#2")], acked: ["b#1": 2]),
    ]

    @Test func aConsistentRunPasses() {
        let report = ChaosChecker.check(Self.good, finalSeq: ["r": 3])
        #expect(report.problems.isEmpty && report.acked == 3 && report.deliveries == 6)
    }

    @Test func aRoomThatLostItsHistoryStartsANewIncarnation() {
        var histories = Self.good
        histories[0].events += [.connected(shard: "s3", seq: 0, resumed: false), .delivered(seq: 1, text: "a#3")]
        histories[1].events += [.connected(shard: "s3", seq: 1, resumed: false)]
        histories[0].acked["a#3"] = 1
        let report = ChaosChecker.check(histories, finalSeq: ["r": 1])
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.resets == 2)
    }

    @Test func eachBrokenRuleIsReported() {
        var gap = Self.good
        gap[1].events.remove(at: 3)  // b misses seq 2
        #expect(ChaosChecker.check(gap).problems.contains { $0.contains("gap") })

        var duplicate = Self.good
        duplicate[1].events.insert(.delivered(seq: 1, text: "a#1"), at: 2)
        #expect(ChaosChecker.check(duplicate).problems.contains { $0.contains("twice") })

        var resent = Self.good  // the same message accepted again under a new seq
        resent[0].events.append(.delivered(seq: 4, text: "a#1"))
        resent[1].events.append(.delivered(seq: 4, text: "a#1"))
        #expect(ChaosChecker.check(resent).problems.contains { $0.contains("delivered twice") })

        var diverged = Self.good  // two shards served the room: same seq, different messages
        diverged[1].events[4] = .delivered(seq: 3, text: "x#1")
        #expect(ChaosChecker.check(diverged).problems.contains { $0.contains("is x#1") || $0.contains("but x#1") })

        var lost = Self.good  // acked, never delivered to its sender
        lost[1].acked["b#2"] = 4
        #expect(ChaosChecker.check(lost).problems.contains { $0.contains("never delivered") })

        var silent = Self.good  // resumed "true" but behind
        silent[1].events.append(.connected(shard: "s3", seq: 1, resumed: true))
        #expect(ChaosChecker.check(silent).problems.contains { $0.contains("behind") })

        #expect(ChaosChecker.check(Self.good, finalSeq: ["r": 5]).problems.contains { $0.contains("ends at seq 3") })
        #expect(ChaosChecker.check(Self.good, finalSeq: [:]).problems.contains { $0.contains("no shard") })
    }
}

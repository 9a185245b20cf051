import Testing
@testable import RoomRingCore

/// A deliberately naive reference implementation of the RoomLog contract.
struct RoomLogModel {
    let limits: RoomLog.Limits
    var lastSeq: UInt64
    var kept: [RoomLog.Entry] = []
    var bytes = 0
    var dedupOrder: [RoomLog.DedupKey] = []
    var dedup: [RoomLog.DedupKey: UInt64] = [:]

    init(limits: RoomLog.Limits, lastSeq: UInt64 = 0) {
        self.limits = limits
        self.lastSeq = lastSeq
    }

    mutating func append(message: String, from: String, ts: Int64, dedup key: RoomLog.DedupKey? = nil) -> RoomLog.Append {
        if let key, let seq = dedup[key] { return .duplicate(seq: seq) }
        lastSeq += 1
        let entry = RoomLog.Entry(seq: lastSeq, message: message, from: from, ts: ts)
        kept.append(entry)
        bytes += message.utf8.count + from.utf8.count + 32
        while !kept.isEmpty, kept.count > limits.maxMessages || bytes > limits.maxBytes {
            bytes -= kept[0].message.utf8.count + kept[0].from.utf8.count + 32
            kept.removeFirst()
        }
        if let key, limits.maxDedupEntries > 0 {
            dedup[key] = lastSeq
            dedupOrder.append(key)
            while dedupOrder.count > limits.maxDedupEntries { dedup[dedupOrder.removeFirst()] = nil }
        }
        return .accepted(entry)
    }

    func since(_ seq: UInt64) -> RoomLog.Resume {
        let reaches = kept.first.map { $0.seq <= seq + 1 } ?? false
        return .init(entries: kept.filter { $0.seq > seq }, complete: seq == lastSeq || (seq < lastSeq && reaches))
    }
}

/// Deterministic pseudo-random numbers.
struct RoomLogRandom {
    var state: UInt64
    mutating func next(_ bound: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(bound))
    }
}

func roomLogDedupPairs(_ log: RoomLog) -> [String] { log.dedupEntries.map { "\($0.key.client)/\($0.key.id)=\($0.seq)" } }
func roomLogDedupPairs(_ model: RoomLogModel) -> [String] {
    model.dedupOrder.map { "\($0.client)/\($0.id)=\(model.dedup[$0]!)" }
}

func expectRoomLogMatchesModel(_ log: RoomLog, _ model: RoomLogModel, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(log.lastSeq == model.lastSeq, sourceLocation: sourceLocation)
    #expect(Array(log.entries) == model.kept, sourceLocation: sourceLocation)
    #expect(log.count == model.kept.count, sourceLocation: sourceLocation)
    #expect(log.bytes == model.bytes, sourceLocation: sourceLocation)
    #expect(log.firstKeptSeq == model.kept.first?.seq, sourceLocation: sourceLocation)
    #expect(roomLogDedupPairs(log) == roomLogDedupPairs(model), sourceLocation: sourceLocation)
}

@Suite("RoomLog")
struct RoomLogTests {
    typealias Key = RoomLog.DedupKey

    @Test func defaults() {
        let limits = RoomLog.Limits()
        #expect(limits.maxMessages == 1000)
        #expect(limits.maxBytes == 1 << 20)
        #expect(limits.maxDedupEntries == 10_000)
        let log = RoomLog()
        #expect(log.lastSeq == 0)
        #expect(log.count == 0)
        #expect(log.bytes == 0)
        #expect(log.firstKeptSeq == nil)
        #expect(log.entries.isEmpty)
        #expect(log.dedupEntries.isEmpty)
        #expect(log.since(0) == .init(entries: [], complete: true))
        #expect(log.since(1) == .init(entries: [], complete: false))
    }

    @Test func entrySizeAndChat() {
        let entry = RoomLog.Entry(seq: 3, message: "h\u{E9}llo", from: "al", ts: 99)
        #expect(entry.size == 6 + 2 + 32)
        #expect(entry.chat == ServerMessage.Chat(message: "h\u{E9}llo", from: "al", seq: 3, ts: 99))
    }

    @Test func seqStartsAtOneWithoutGapsOver10kAppends() {
        var log = RoomLog()
        for i in 1...10_000 {
            let result = log.append(message: "m\(i)", from: "u\(i % 7)", ts: Int64(i))
            #expect(result == .accepted(.init(seq: UInt64(i), message: "m\(i)", from: "u\(i % 7)", ts: Int64(i))))
            if result != .accepted(.init(seq: UInt64(i), message: "m\(i)", from: "u\(i % 7)", ts: Int64(i))) { return }
        }
        #expect(log.lastSeq == 10_000)
        #expect(log.count == 1000)
        #expect(log.firstKeptSeq == 9001)
        #expect(log.entries.map(\.seq) == Array(9001...10_000))
        #expect(log.bytes == log.entries.reduce(0) { $0 + $1.size })
    }

    @Test func duplicatesDoNotConsumeSeqs() {
        var log = RoomLog()
        var accepted: [UInt64] = []
        for i in 0..<3000 {
            // Every third message is a resend of an earlier id.
            let id = i % 3 == 2 ? "id\(i - 1)" : "id\(i)"
            if case .accepted(let entry) = log.append(message: "x", from: "a", ts: 0, dedup: Key(client: "c", id: id)) {
                accepted.append(entry.seq)
            }
        }
        #expect(accepted == Array(1...2000))
        #expect(log.lastSeq == 2000)
    }

    @Test func historyBoundedByCount() {
        var log = RoomLog(limits: .init(maxMessages: 5, maxBytes: 1 << 30))
        for i in 1...12 { _ = log.append(message: "m\(i)", from: "f", ts: 0) }
        #expect(log.count == 5)
        #expect(log.firstKeptSeq == 8)
        #expect(log.entries.map(\.seq) == [8, 9, 10, 11, 12])
        #expect(log.entries.map(\.message) == ["m8", "m9", "m10", "m11", "m12"])
        #expect(log.bytes == log.entries.reduce(0) { $0 + $1.size })
        #expect(log.lastSeq == 12)
    }

    @Test func historyBoundedByBytes() {
        let message = String(repeating: "x", count: 67)  // 67 + 1 + 32 = 100 bytes
        var log = RoomLog(limits: .init(maxMessages: 1000, maxBytes: 350))
        for i in 1...10 { _ = log.append(message: message, from: "f", ts: Int64(i)) }
        #expect(log.count == 3)
        #expect(log.bytes == 300)
        #expect(log.firstKeptSeq == 8)
        var exact = RoomLog(limits: .init(maxMessages: 1000, maxBytes: 300))
        for i in 1...10 { _ = exact.append(message: message, from: "f", ts: Int64(i)) }
        #expect(exact.count == 3, "a history of exactly maxBytes is kept")
        #expect(exact.bytes == 300)
        // A big message evicts several small ones at once, oldest first.
        _ = exact.append(message: String(repeating: "y", count: 167), from: "f", ts: 0)  // 200 bytes
        #expect(exact.entries.map(\.seq) == [10, 11])
        #expect(exact.bytes == 300)
    }

    @Test(arguments: [(4, 1000), (50, 900), (1000, 700), (3, 100_000), (0, 1000), (10, 0), (1, 1)])
    func historyBoundedByBothMatchesModel(maxMessages: Int, maxBytes: Int) {
        let limits = RoomLog.Limits(maxMessages: maxMessages, maxBytes: maxBytes, maxDedupEntries: 8)
        var log = RoomLog(limits: limits)
        var model = RoomLogModel(limits: limits)
        var random = RoomLogRandom(state: UInt64(maxMessages * 31 + maxBytes))
        for i in 0..<600 {
            let message = String(repeating: "\u{E9}", count: random.next(120))
            let key = random.next(3) == 0 ? nil : Key(client: "c\(random.next(3))", id: "\(random.next(40))")
            let a = log.append(message: message, from: "u\(i % 5)", ts: Int64(i), dedup: key)
            let b = model.append(message: message, from: "u\(i % 5)", ts: Int64(i), dedup: key)
            #expect(a == b)
            #expect(log.count <= maxMessages && log.bytes <= maxBytes)
        }
        expectRoomLogMatchesModel(log, model)
        for seq in 0...(log.lastSeq + 2) { #expect(log.since(seq) == model.since(seq), "since(\(seq))") }
    }

    @Test func messageLargerThanMaxBytesKeepsNothing() {
        var log = RoomLog(limits: .init(maxMessages: 10, maxBytes: 100))
        _ = log.append(message: "small", from: "f", ts: 0)
        #expect(log.append(message: String(repeating: "z", count: 200), from: "f", ts: 1)
            == .accepted(.init(seq: 2, message: String(repeating: "z", count: 200), from: "f", ts: 1)))
        #expect(log.count == 0)
        #expect(log.bytes == 0)
        #expect(log.firstKeptSeq == nil)
        #expect(log.lastSeq == 2)
        #expect(log.since(2) == .init(entries: [], complete: true))
        #expect(log.since(1) == .init(entries: [], complete: false))
        #expect(log.since(0) == .init(entries: [], complete: false))
    }

    // MARK: since

    static func log(_ n: Int, maxMessages: Int = 1000) -> RoomLog {
        var log = RoomLog(limits: .init(maxMessages: maxMessages))
        for i in 1...n { _ = log.append(message: "m\(i)", from: "f", ts: Int64(i)) }
        return log
    }

    @Test func sinceLastSeqIsEmptyAndComplete() {
        let log = Self.log(20, maxMessages: 5)
        #expect(log.since(20) == .init(entries: [], complete: true))
    }

    @Test func sinceWithinHistoryIsTheExactSuffix() {
        let log = Self.log(20, maxMessages: 5)  // keeps 16...20
        for seq in UInt64(15)...19 {
            let resume = log.since(seq)
            #expect(resume.complete, "since(\(seq))")
            #expect(resume.entries.map(\.seq) == Array((seq + 1)...20), "since(\(seq))")
            #expect(resume.entries == Array(log.entries.filter { $0.seq > seq }))
        }
    }

    @Test func sinceBeforeHistoryStartReturnsWhatIsKeptIncomplete() {
        let log = Self.log(20, maxMessages: 5)
        for seq in UInt64(0)...14 {
            let resume = log.since(seq)
            #expect(!resume.complete, "since(\(seq))")
            #expect(resume.entries.map(\.seq) == Array(16...20), "since(\(seq))")
        }
    }

    @Test func sinceAheadOfTheLogIsIncomplete() {
        let log = Self.log(20, maxMessages: 5)
        for seq: UInt64 in [21, 22, 1000, UInt64.max] {
            #expect(log.since(seq) == .init(entries: [], complete: false), "since(\(seq))")
        }
        let empty = RoomLog()
        #expect(empty.since(UInt64.max) == .init(entries: [], complete: false))
        var full = RoomLog(lastSeq: UInt64.max - 1)
        _ = full.append(message: "last", from: "f", ts: 0)
        #expect(full.since(UInt64.max) == .init(entries: [], complete: true))
        #expect(full.since(UInt64.max - 1).entries.map(\.seq) == [UInt64.max])
        #expect(full.since(UInt64.max - 1).complete)
    }

    @Test func sinceZeroWithEverythingKept() {
        let log = Self.log(7)
        #expect(log.since(0) == .init(entries: Array(log.entries), complete: true))
        #expect(log.since(0).entries.map(\.message) == (1...7).map { "m\($0)" })
    }

    // MARK: dedup

    @Test func dedupReturnsTheOriginalSeq() {
        var log = RoomLog()
        let k1 = Key(client: "c1", id: "a")
        #expect(log.append(message: "one", from: "alice", ts: 1, dedup: k1) == .accepted(.init(seq: 1, message: "one", from: "alice", ts: 1)))
        _ = log.append(message: "two", from: "bob", ts: 2)
        _ = log.append(message: "three", from: "bob", ts: 3, dedup: Key(client: "c2", id: "b"))
        #expect(log.append(message: "one again", from: "alice", ts: 4, dedup: k1) == .duplicate(seq: 1))
        #expect(log.lastSeq == 3)
        #expect(log.count == 3)
        #expect(log.entries.map(\.message) == ["one", "two", "three"])
        // Same id from another client is a new message; same client with another id too.
        #expect(log.append(message: "x", from: "carol", ts: 5, dedup: Key(client: "c3", id: "a"))
            == .accepted(.init(seq: 4, message: "x", from: "carol", ts: 5)))
        #expect(log.append(message: "y", from: "alice", ts: 6, dedup: Key(client: "c1", id: "A")) == .accepted(.init(seq: 5, message: "y", from: "alice", ts: 6)))
        #expect(log.append(message: "z", from: "bob", ts: 7, dedup: Key(client: "c2", id: "b")) == .duplicate(seq: 3))
        #expect(log.append(message: "w", from: "carol", ts: 8, dedup: Key(client: "c3", id: "a")) == .duplicate(seq: 4))
        #expect(roomLogDedupPairs(log) == ["c1/a=1", "c2/b=3", "c3/a=4", "c1/A=5"])
        // A message without an id is never a duplicate.
        #expect(log.append(message: "one", from: "alice", ts: 1) == .accepted(.init(seq: 6, message: "one", from: "alice", ts: 1)))
    }

    @Test func dedupOutlivesHistory() {
        var log = RoomLog(limits: .init(maxMessages: 2))
        _ = log.append(message: "a", from: "f", ts: 0, dedup: Key(client: "c", id: "1"))
        for _ in 0..<10 { _ = log.append(message: "b", from: "f", ts: 0) }
        #expect(log.firstKeptSeq == 10)
        #expect(log.append(message: "a", from: "f", ts: 0, dedup: Key(client: "c", id: "1")) == .duplicate(seq: 1))
    }

    @Test func dedupTableIsBoundedOldestForgotten() {
        var log = RoomLog(limits: .init(maxDedupEntries: 3))
        for i in 1...4 { _ = log.append(message: "m", from: "f", ts: 0, dedup: Key(client: "c", id: "k\(i)")) }
        #expect(roomLogDedupPairs(log) == ["c/k2=2", "c/k3=3", "c/k4=4"])
        #expect(log.append(message: "m", from: "f", ts: 0, dedup: Key(client: "c", id: "k4")) == .duplicate(seq: 4))
        #expect(log.append(message: "m", from: "f", ts: 0, dedup: Key(client: "c", id: "k2")) == .duplicate(seq: 2))
        // k1 was forgotten: it is accepted as new, and pushes out k2.
        #expect(log.append(message: "m", from: "f", ts: 0, dedup: Key(client: "c", id: "k1"))
            == .accepted(.init(seq: 5, message: "m", from: "f", ts: 0)))
        #expect(roomLogDedupPairs(log) == ["c/k3=3", "c/k4=4", "c/k1=5"])
        #expect(log.append(message: "m", from: "f", ts: 0, dedup: Key(client: "c", id: "k2"))
            == .accepted(.init(seq: 6, message: "m", from: "f", ts: 0)))
        #expect(log.dedupEntries.count == 3)
    }

    @Test func zeroDedupEntriesRemembersNothing() {
        var log = RoomLog(limits: .init(maxDedupEntries: 0))
        let key = Key(client: "c", id: "i")
        #expect(log.append(message: "m", from: "f", ts: 0, dedup: key) == .accepted(.init(seq: 1, message: "m", from: "f", ts: 0)))
        #expect(log.append(message: "m", from: "f", ts: 0, dedup: key) == .accepted(.init(seq: 2, message: "m", from: "f", ts: 0)))
        log.remember(key, seq: 1)
        #expect(log.dedupEntries.isEmpty)
    }

    @Test func dedupCompactionKeepsBehaviour() {
        let limits = RoomLog.Limits(maxMessages: 10, maxDedupEntries: 10)
        var log = RoomLog(limits: limits)
        var model = RoomLogModel(limits: limits)
        for i in 0..<3000 {
            let key = Key(client: "c\(i % 4)", id: "\(i)")
            #expect(log.append(message: "m", from: "f", ts: 0, dedup: key) == model.append(message: "m", from: "f", ts: 0, dedup: key))
        }
        expectRoomLogMatchesModel(log, model)
        #expect(log.append(message: "m", from: "f", ts: 0, dedup: Key(client: "c3", id: "2999")) == .duplicate(seq: 3000))
        #expect(log.append(message: "m", from: "f", ts: 0, dedup: Key(client: "c2", id: "2990")) == .duplicate(seq: 2991))
        #expect(log.append(message: "m", from: "f", ts: 0, dedup: Key(client: "c1", id: "2989"))
            == .accepted(.init(seq: 3001, message: "m", from: "f", ts: 0)))
    }

    @Test func dedupCompactionWithForgottenKeysComingBack() {
        // 11 keys in a cycle through a table of 10: every append forgets the oldest key, and the next key is always
        // the one forgotten just before, so the table's internal compaction happens while a forgotten key returns.
        let limits = RoomLog.Limits(maxMessages: 5, maxDedupEntries: 10)
        var log = RoomLog(limits: limits)
        var model = RoomLogModel(limits: limits)
        let keys = (0..<11).map { Key(client: "c", id: "k\($0)") }
        for i in 0..<5000 {
            let key = keys[i % keys.count]
            let a = log.append(message: "m", from: "f", ts: 0, dedup: key)
            #expect(a == model.append(message: "m", from: "f", ts: 0, dedup: key), "append \(i)")
            #expect(log.append(message: "resend", from: "f", ts: 0, dedup: key) == .duplicate(seq: UInt64(i + 1)), "resend \(i)")
            if roomLogDedupPairs(log) != roomLogDedupPairs(model) {
                Issue.record("dedup table diverged after \(i + 1) appends")
                return
            }
        }
        #expect(log.lastSeq == 5000)
    }

    // MARK: restore, handoff

    @Test func initLastSeqContinuesNumbering() {
        var log = RoomLog(lastSeq: 41)
        #expect(log.lastSeq == 41)
        #expect(log.since(41) == .init(entries: [], complete: true))
        #expect(log.since(40) == .init(entries: [], complete: false))
        #expect(log.append(message: "hi", from: "a", ts: 5) == .accepted(.init(seq: 42, message: "hi", from: "a", ts: 5)))
        #expect(log.since(41).entries.map(\.seq) == [42])
        #expect(log.since(41).complete)
        #expect(!log.since(40).complete)
        #expect(log.since(40).entries.map(\.seq) == [42])
    }

    @Test func restoreIgnoresOutOfOrderEntries() {
        var log = RoomLog()
        log.restore(.init(seq: 5, message: "five", from: "f", ts: 0))
        log.restore(.init(seq: 5, message: "again", from: "f", ts: 0))
        log.restore(.init(seq: 3, message: "three", from: "f", ts: 0))
        log.restore(.init(seq: 6, message: "six", from: "f", ts: 0))
        #expect(log.entries.map(\.message) == ["five", "six"])
        #expect(log.lastSeq == 6)
        #expect(log.since(4).entries.map(\.seq) == [5, 6])
        #expect(log.since(4).complete)
        #expect(!log.since(3).complete)
        #expect(log.append(message: "seven", from: "f", ts: 0) == .accepted(.init(seq: 7, message: "seven", from: "f", ts: 0)))
    }

    @Test func restoreRespectsLimits() {
        var log = RoomLog(limits: .init(maxMessages: 10, maxBytes: 1 << 20))
        for seq in UInt64(1)...3000 { log.restore(.init(seq: seq, message: "m\(seq)", from: "f", ts: 0)) }
        #expect(log.count == 10)
        #expect(log.entries.map(\.seq) == Array(2991...3000))
        #expect(log.bytes == log.entries.reduce(0) { $0 + $1.size })
        #expect(log.lastSeq == 3000)
    }

    @Test func rememberIsIdempotent() {
        var log = RoomLog(limits: .init(maxDedupEntries: 2))
        log.remember(Key(client: "c", id: "a"), seq: 1)
        log.remember(Key(client: "c", id: "a"), seq: 1)
        log.remember(Key(client: "c", id: "b"), seq: 2)
        #expect(roomLogDedupPairs(log) == ["c/a=1", "c/b=2"])
        #expect(log.append(message: "m", from: "f", ts: 0, dedup: Key(client: "c", id: "a")) == .duplicate(seq: 1))
        log.remember(Key(client: "c", id: "z"), seq: 9)
        #expect(roomLogDedupPairs(log) == ["c/b=2", "c/z=9"])
    }

    /// Copies a log the way a handoff does: lastSeq, kept entries, dedup table.
    static func handoff(_ original: RoomLog, passLastSeq: Bool = true) -> RoomLog {
        var copy = RoomLog(limits: original.limits, lastSeq: passLastSeq ? original.lastSeq : 0)
        for entry in original.entries { copy.restore(entry) }
        for (key, seq) in original.dedupEntries { copy.remember(key, seq: seq) }
        return copy
    }

    static func expectSameBehaviour(_ a: RoomLog, _ b: RoomLog, keys: [Key], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.lastSeq == b.lastSeq, sourceLocation: sourceLocation)
        #expect(Array(a.entries) == Array(b.entries), sourceLocation: sourceLocation)
        #expect(a.count == b.count && a.bytes == b.bytes && a.firstKeptSeq == b.firstKeptSeq, sourceLocation: sourceLocation)
        #expect(roomLogDedupPairs(a) == roomLogDedupPairs(b), sourceLocation: sourceLocation)
        let sinceMismatches = (0...(a.lastSeq + 3)).filter { a.since($0) != b.since($0) }
        #expect(sinceMismatches == [], sourceLocation: sourceLocation)
        let dedupMismatches = keys.filter { key in
            var x = a
            var y = b
            return x.append(message: "probe", from: "p", ts: 0, dedup: key) != y.append(message: "probe", from: "p", ts: 0, dedup: key)
        }
        #expect(dedupMismatches == [], sourceLocation: sourceLocation)
    }

    @Test(arguments: [
        RoomLog.Limits(maxMessages: 50, maxBytes: 1 << 20, maxDedupEntries: 20),
        RoomLog.Limits(maxMessages: 1000, maxBytes: 3000, maxDedupEntries: 1000),
        RoomLog.Limits(maxMessages: 10, maxBytes: 1 << 20, maxDedupEntries: 5),
    ])
    func handoffRebuildsAnEquivalentLog(limits: RoomLog.Limits) {
        var original = RoomLog(limits: limits)
        var random = RoomLogRandom(state: 7)
        var keys: [Key] = []
        for i in 0..<2500 {
            let key = Key(client: "c\(random.next(5))", id: "\(random.next(1500))")
            keys.append(key)
            _ = original.append(message: String(repeating: "m", count: random.next(60)), from: "u\(i % 3)", ts: Int64(i), dedup: key)
        }
        var copy = Self.handoff(original)
        Self.expectSameBehaviour(original, copy, keys: Array(Set(keys)))
        let withoutLastSeq = Self.handoff(original, passLastSeq: false)
        Self.expectSameBehaviour(original, withoutLastSeq, keys: Array(Set(keys)))
        // Both keep behaving the same as traffic continues.
        for i in 0..<300 {
            let key = Key(client: "c\(random.next(5))", id: "\(random.next(1500))")
            #expect(original.append(message: "n", from: "u", ts: Int64(i), dedup: key) == copy.append(message: "n", from: "u", ts: Int64(i), dedup: key))
        }
        Self.expectSameBehaviour(original, copy, keys: Array(Set(keys)))
    }

    @Test func handoffOfARoomWhoseHistoryWasEvicted() {
        var original = RoomLog(limits: .init(maxMessages: 10, maxBytes: 50))
        _ = original.append(message: "a", from: "f", ts: 0, dedup: Key(client: "c", id: "1"))
        _ = original.append(message: String(repeating: "x", count: 100), from: "f", ts: 0)
        #expect(original.count == 0)
        let copy = Self.handoff(original)
        Self.expectSameBehaviour(original, copy, keys: [Key(client: "c", id: "1"), Key(client: "c", id: "2")])
        #expect(copy.lastSeq == 2)
    }

    @Test func compactionKeepsBehaviour() {
        let limits = RoomLog.Limits(maxMessages: 10)
        var log = RoomLog(limits: limits)
        var model = RoomLogModel(limits: limits)
        for i in 1...3500 {
            let a = log.append(message: "m\(i)", from: "f", ts: Int64(i))
            let b = model.append(message: "m\(i)", from: "f", ts: Int64(i))
            #expect(a == b)
            if Array(log.entries) != model.kept || log.bytes != model.bytes {
                Issue.record("diverged after \(i) appends")
                return
            }
            if i % 500 == 0 || (1020...1040).contains(i) || (2040...2060).contains(i) {
                for seq in [0, UInt64(i) - 11, UInt64(i) - 10, UInt64(i) - 9, UInt64(i) - 1, UInt64(i), UInt64(i) + 1] where seq <= UInt64(i) + 1 {
                    #expect(log.since(seq) == model.since(seq), "since(\(seq)) after \(i)")
                }
            }
        }
        expectRoomLogMatchesModel(log, model)
        #expect(log.entries.map(\.seq) == Array(3491...3500))
        #expect(log.since(3495).entries.map(\.message) == ["m3496", "m3497", "m3498", "m3499", "m3500"])
        #expect(log.since(3490).complete)
        #expect(!log.since(3489).complete)
        let copy = Self.handoff(log)
        Self.expectSameBehaviour(log, copy, keys: [])
    }
}

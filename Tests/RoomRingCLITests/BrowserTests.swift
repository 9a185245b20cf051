import Foundation
import RoomRingClient
import RoomRingSpawn
import RoomRingCore
import Testing

/// The browser side in a real browser: headless Chromium against `roomring up` processes, driven over DevTools.
/// Pages are read and driven through their DOM only (type, click, read what a person would see).
@Suite(.serialized) struct BrowserTests {
    static let token = "browser-test-token"

    /// Where screenshots go: `.build/artifacts/` in the package (git-ignored, and not at the top level).
    static var artifacts: URL {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/artifacts")
    }

    @Test func twoPagesChatThroughADrainAndLoseNothing() async throws {
        guard Chromium.available() else { return }
        try await Self.withFleet(shards: 2) { ports, up in
            #expect(up.text.contains("dashboard     http://127.0.0.1:\(ports.admin)/admin#token=\(Self.token)"))
            try await Self.withBrowser { browser in
                let room = "browser-\(UUID().uuidString.prefix(8).lowercased())"
                var pages: [DevToolsPage] = []
                for name in ["alice", "bob"] {
                    let page = try await browser.open("http://127.0.0.1:\(ports.proxy)/")
                    try await page.waitLoaded()
                    // Choose a room and a name in the form, as a person would.
                    #expect(try await page.evaluate("""
                        (() => { document.getElementById('room').value = \(quoted(room));
                          document.getElementById('name').value = \(quoted(name));
                          document.getElementById('join-button').click(); return true })()
                        """, as: Bool.self))
                    try await page.waitUntil("document.getElementById('state').dataset.state === 'connected'",
                                             describe: "document.getElementById('transitions').innerText")
                    pages.append(page)
                }
                let (alice, bob) = (pages[0], pages[1])
                // Each page lists both people in the room (GET /rooms/<id>/members through the proxy).
                let memberNames = "[...document.querySelectorAll('#members li')].map(e => e.textContent).join(',')"
                for page in pages {
                    try await page.waitUntil("\(memberNames) === 'alice,bob'", describe: memberNames)
                }
                let owner = try await alice.evaluate("document.getElementById('shard').textContent", as: String.self)
                #expect(try await bob.evaluate("document.getElementById('shard').textContent", as: String.self)
                    == owner)

                var expected: [String] = []
                func say(_ page: DevToolsPage, _ text: String) async throws {
                    expected.append(text)
                    _ = try await page.evaluate("""
                        (() => { document.getElementById('text').value = \(quoted(text));
                          document.getElementById('send-button').click(); return true })()
                        """, as: Bool.self)
                }
                for i in 1...5 {
                    try await say(alice, "alice \(i)")
                    try await say(bob, "bob \(i)")
                }
                for page in pages { try await page.waitUntil(Self.count(10)) }

                // Drain the room's shard while both pages keep talking.
                var drain: RoomRingProcess?
                defer {
                    if let drain, drain.process.isRunning { kill(drain.process.processIdentifier, SIGKILL) }
                }
                for i in 6...25 {
                    try await say(alice, "alice \(i)")
                    try await say(bob, "bob \(i)")
                    if i == 8 {
                        drain = try RoomRingProcess(["ring", "drain", owner,
                                                     "--proxy-admin", "http://127.0.0.1:\(ports.admin)"],
                                                    environment: ["ROOMRING_ADMIN_TOKEN": Self.token])
                    }
                    try await Task.sleep(for: .milliseconds(40))
                }
                let drainStatus = await drain?.stop(0, timeout: .seconds(60))
                #expect(drainStatus == 0, "ring drain failed: \(drain?.text ?? "")")

                for page in pages {
                    try await page.waitUntil("\(Self.count(50)) && document.getElementById('pending').textContent === '0'",
                                             timeout: .seconds(45),
                                             describe: "document.getElementById('transitions').innerText + ' msgs ' + "
                                                 + "document.querySelectorAll('#log .msg').length")
                }
                let seqs = try await alice.evaluate(Self.seqs, as: [Int].self)
                #expect(seqs == Array(1...50), "alice saw \(seqs)")
                #expect(try await bob.evaluate(Self.seqs, as: [Int].self) == seqs)
                for page in pages {
                    let texts = try await page.evaluate(
                        "[...document.querySelectorAll('#log .msg .text')].map(e => e.textContent)", as: [String].self)
                    #expect(texts.count == expected.count && Set(texts) == Set(expected),
                            "lost or duplicated: \(Set(expected).subtracting(texts)) / \(texts.count)")
                    // The page showed the move: reconnecting, then resumed on the other shard.
                    let states = try await page.evaluate(
                        "[...document.querySelectorAll('#transitions li')].map(e => e.dataset.state)", as: [String].self)
                    let reconnect = states.firstIndex(of: "reconnecting")
                    #expect(reconnect != nil && states[(reconnect ?? 0)...].contains("resumed"), "states \(states)")
                    #expect(!states.contains("not-resumed"), "history was lost: \(states)")
                    let shard = try await page.evaluate("document.getElementById('shard').textContent", as: String.self)
                    #expect(shard != owner, "still on the drained shard \(owner)")
                }
                // The member list follows the room to its new shard.
                try await alice.waitUntil("\(memberNames) === 'alice,bob'", describe: memberNames)
                try Self.save(try await alice.screenshot(), as: "chat-after-drain.png")
            }
        }
    }

    @Test func dashboardListsShardsDrawsTheRingAndDrains() async throws {
        guard Chromium.available() else { return }
        try await Self.withFleet(shards: 3) { ports, _ in
            // Some rooms with members and traffic, so the dashboard has something to show.
            var members: [WebSocketConnection] = []
            defer { for member in members { Task { await member.close() } } }
            for i in 0..<6 {
                let member = try await WebSocketConnection.connect(host: "127.0.0.1", port: ports.proxy,
                                                                   path: "/rooms/dash-\(i)?name=m\(i)")
                _ = try await member.nextMessage()
                member.send(text: ClientMessage.chat(message: "hello \(i)", id: nil).encoded())
                members.append(member)
            }
            try await Self.withBrowser { browser in
                // Without a token the page asks for one and shows no data.
                let anonymous = try await browser.open("http://127.0.0.1:\(ports.admin)/admin")
                try await anonymous.waitLoaded()
                try await anonymous.waitUntil("!document.getElementById('token-form').hidden")
                #expect(try await anonymous.evaluate("document.querySelectorAll('#shards tr').length", as: Int.self)
                    == 0)
                await anonymous.close()

                let page = try await browser.open("http://127.0.0.1:\(ports.admin)/admin#token=\(Self.token)")
                try await page.waitLoaded()
                try await page.waitUntil("document.querySelectorAll('#shards tr[data-shard]').length === 3",
                                         describe: "document.getElementById('status').textContent")
                let rows = try await page.evaluate("""
                    [...document.querySelectorAll('#shards tr[data-shard]')].map(r => ({id: r.dataset.shard,
                      state: r.querySelector('[data-field=state]').textContent,
                      health: r.querySelector('[data-field=health]').textContent,
                      rooms: r.querySelector('[data-field=rooms]').textContent}))
                    """, as: [Row].self)
                #expect(rows.map(\.id) == ["s1", "s2", "s3"])
                #expect(rows.allSatisfy { $0.state == "active" && $0.health == "up" }, "\(rows)")
                // The ring: arcs of every shard, covering the whole circle.
                let arcShards = try await page.evaluate(
                    "[...new Set([...document.querySelectorAll('#ring [data-shard]')].map(p => p.dataset.shard))].sort()",
                    as: [String].self)
                #expect(arcShards == ["s1", "s2", "s3"])
                try await page.waitUntil("document.querySelectorAll('#rooms tr[data-room]').length === 6",
                                         describe: "document.getElementById('rooms').innerText")
                #expect(try await page.evaluate("document.getElementById('epoch').textContent", as: String.self) == "1")
                // Message rates follow live traffic.
                let talker = members[0]
                let traffic = Task {
                    for i in 0..<60 where !Task.isCancelled {
                        talker.send(text: ClientMessage.chat(message: "rate \(i)", id: nil).encoded())
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                }
                try await page.waitUntil("Number(document.getElementById('rate-in').textContent) > 0",
                                         describe: "document.getElementById('rate-in').textContent")
                try Self.save(try await page.screenshot(), as: "dashboard.png")
                traffic.cancel()

                // Drain s3 from the dashboard (two clicks), then watch the page follow the ring.
                for _ in 0..<2 {
                    _ = try await page.evaluate(
                        "(document.querySelector('tr[data-shard=s3] button[data-action=drain]').click(), true)",
                        as: Bool.self)
                    try await Task.sleep(for: .milliseconds(100))
                }
                try await page.waitUntil("document.querySelector('tr[data-shard=s3]').dataset.state === 'draining'",
                                         timeout: .seconds(30), describe: "document.getElementById('log').innerText")
                try await page.waitUntil("document.querySelector('tr[data-shard=s3] [data-field=rooms]')"
                                         + ".textContent === '0'",
                                         timeout: .seconds(30), describe: "document.getElementById('log').innerText")
                #expect(try await page.evaluate("document.getElementById('epoch').textContent", as: String.self) == "2")
                #expect(try await page.evaluate("document.querySelectorAll('#ring [data-shard=s3]').length",
                                                as: Int.self) == 0)
                #expect(try await page.evaluate("document.getElementById('log').innerText", as: String.self)
                    .contains("pushed epoch 2 to shard s3"))
                try Self.save(try await page.screenshot(), as: "dashboard-after-drain.png")
            }
        }
    }

    struct Row: Decodable, CustomStringConvertible {
        var id, state, health, rooms: String
        var description: String { "\(id) \(state) \(health) \(rooms)" }
    }

    static let seqs = "[...document.querySelectorAll('#log .msg')].map(e => Number(e.dataset.seq))"
    static func count(_ n: Int) -> String { "document.querySelectorAll('#log .msg').length >= \(n)" }

    static func save(_ png: Data, as name: String) throws {
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let file = artifacts.appendingPathComponent(name)
        try png.write(to: file)
        #expect(png.count > 1000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        print("screenshot written: \(file.path) (\(png.count) bytes)")
    }

    /// Runs `body` against `roomring up --shards n`, stopping it afterwards whatever happens.
    static func withFleet(shards: Int, _ body: (UpCommandTests.Ports, RoomRingProcess) async throws -> Void)
        async throws
    {
        let ports = try UpCommandTests().fleetPorts(shards: shards)
        let up = try RoomRingProcess(["up", "--shards", String(shards), "--port", String(ports.proxy),
                                      "--admin-port", String(ports.admin), "--shard-base-port", String(ports.shardBase),
                                      "--shard-admin-base-port", String(ports.adminBase)],
                                     environment: ["ROOMRING_ADMIN_TOKEN": token])
        do {
            try await up.waitFor("Ctrl-C stops everything")
            try await body(ports, up)
        } catch {
            _ = await up.stop()
            throw error
        }
        #expect(await up.stop() != nil, "roomring up did not stop on SIGTERM")
    }

    /// Runs `body` with a fresh headless browser, closed (by PID if need be) afterwards.
    static func withBrowser(_ body: (Chromium) async throws -> Void) async throws {
        let browser = try await Chromium.launch()
        do {
            try await body(browser)
        } catch {
            await browser.stop()
            throw error
        }
        await browser.stop()
        #expect(!browser.process.isRunning, "chromium (pid \(browser.process.processIdentifier)) did not exit")
    }
}

extension UpCommandTests {
    typealias Ports = (proxy: Int, admin: Int, shardBase: Int, adminBase: Int)
}

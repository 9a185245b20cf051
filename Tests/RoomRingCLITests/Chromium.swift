import Foundation
import RoomRingSpawn
import RoomRingClient
import Synchronization

/// A headless Chromium (Debian's `chromium` package) driven over the Chrome DevTools Protocol, with the project's
/// own WebSocket client: a DevTools endpoint is a plain `ws://` URL.
final class Chromium: Sendable {
    static let path = "/usr/bin/chromium"

    let process: ChildProcess
    let profile: URL
    /// The DevTools HTTP/WebSocket port Chromium picked.
    let port: Int
    /// `/devtools/browser/<id>`, the browser-wide endpoint.
    let browserPath: String

    private init(process: ChildProcess, profile: URL, port: Int, browserPath: String) {
        self.process = process
        self.profile = profile
        self.port = port
        self.browserPath = browserPath
    }

    /// Whether the browser is installed; prints why a test skips when it is not.
    static func available() -> Bool {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            print("skipping: \(path) not found (apt-get install chromium; .ci/run installs it)")
            return false
        }
        return true
    }

    /// Starts a headless browser with a fresh profile and waits (bounded) for its DevTools port.
    static func launch(timeout: Duration = .seconds(30)) async throws -> Chromium {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("roomring-chromium-\(UUID())")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        let arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--remote-debugging-port=0", "--user-data-dir=\(profile.path)", "--no-first-run",
                             "--no-default-browser-check", "--disable-background-timer-throttling",
                             "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
                             "--window-size=1280,900", "about:blank"]
        let log = profile.appendingPathComponent("chromium.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        let process = try ChildProcess(executable: path, arguments: arguments,
                                       stdout: .descriptor(handle.fileDescriptor), stderr: .descriptor(handle.fileDescriptor))
        let portFile = profile.appendingPathComponent("DevToolsActivePort")
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOf: portFile, encoding: .utf8) {
                let lines = text.split(separator: "\n").map(String.init)
                if lines.count >= 2, let port = Int(lines[0]) {
                    return Chromium(process: process, profile: profile, port: port, browserPath: lines[1])
                }
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        process.signal(SIGKILL)
        try? FileManager.default.removeItem(at: profile)
        throw ProcessFailure("chromium did not open its DevTools port within \(timeout):\n\(output.suffix(2000))")
    }

    /// Opens a tab at `url` and attaches to it.
    func open(_ url: String) async throws -> DevToolsPage {
        let escaped = url.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? url
        let response = try await HTTPClient.request("PUT", host: "127.0.0.1", port: port, path: "/json/new?\(escaped)")
        guard response.status == 200,
            let target = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            let socket = target["webSocketDebuggerUrl"] as? String,
            let path = socket.range(of: "/devtools/").map({ String(socket[$0.lowerBound...]) })
        else { throw ProcessFailure("DevTools /json/new answered \(response.status): \(response.text)") }
        let connection = try await WebSocketConnection.connect(host: "127.0.0.1", port: port, path: path)
        let page = DevToolsPage(connection: connection)
        _ = try await page.call("Page.enable")
        _ = try await page.call("Runtime.enable")
        return page
    }

    /// Closes the browser (politely, then by PID) and deletes its profile.
    func stop() async {
        if process.isRunning,
            let browser = try? await WebSocketConnection.connect(host: "127.0.0.1", port: port, path: browserPath) {
            browser.send(text: #"{"id":1,"method":"Browser.close"}"#)
            let deadline = ContinuousClock.now + .seconds(5)
            while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            await browser.close()
        }
        if process.isRunning { await process.terminate(grace: .seconds(5)) }
        try? FileManager.default.removeItem(at: profile)
    }
}

/// One tab. Calls are answered in order on one connection: make one call at a time per page.
final class DevToolsPage: Sendable {
    let connection: WebSocketConnection
    private let nextID = Atomic<Int>(0)

    init(connection: WebSocketConnection) { self.connection = connection }

    /// A DevTools command; returns its `result` as JSON text. `params` is a JSON object's text.
    @discardableResult
    func call(_ method: String, params: String = "{}", timeout: Duration = .seconds(20)) async throws -> Data {
        let id = nextID.add(1, ordering: .relaxed).newValue
        connection.send(text: #"{"id":\#(id),"method":"\#(method)","params":\#(params)}"#)
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw ProcessFailure("DevTools \(method): no answer within \(timeout)") }
            guard case .text(let text) = try await connection.next(timeout: left) else { continue }
            guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                object["id"] as? Int == id
            else { continue }  // an event, or the answer to an abandoned call
            if let error = object["error"] { throw ProcessFailure("DevTools \(method) failed: \(error)") }
            return try JSONSerialization.data(withJSONObject: object["result"] ?? [:])
        }
    }

    /// Evaluates JavaScript in the page (awaiting a promise) and decodes its value, which must be JSON-able.
    func evaluate<T: Decodable>(_ expression: String, as type: T.Type = T.self) async throws -> T {
        // The value travels as a JSON string so any Decodable shape comes back intact.
        let wrapped = "(async () => JSON.stringify(await (async () => (\(expression)))()))()"
        let params = try JSONSerialization.data(withJSONObject: ["expression": wrapped, "awaitPromise": true,
                                                                 "returnByValue": true])
        let data = try await call("Runtime.evaluate", params: String(decoding: params, as: UTF8.self))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ProcessFailure("Runtime.evaluate: unexpected answer")
        }
        if let exception = object["exceptionDetails"] as? [String: Any] {
            let description = (exception["exception"] as? [String: Any])?["description"] ?? exception["text"] ?? ""
            throw ProcessFailure("page threw evaluating \(expression.prefix(120)): \(description)")
        }
        guard let result = object["result"] as? [String: Any], let json = result["value"] as? String else {
            throw ProcessFailure("\(expression.prefix(120)) gave no JSON value: \(object)")
        }
        return try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }

    /// Polls `expression` (a JavaScript boolean) until true; fails after `timeout` with `describe`'s value.
    func waitUntil(_ expression: String, timeout: Duration = .seconds(20), describe: String = "document.title")
        async throws
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await evaluate(expression, as: Bool.self)) == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        let state = (try? await evaluate(describe, as: String.self)) ?? "?"
        throw ProcessFailure("page: \(expression) not true within \(timeout); \(state)")
    }

    /// Waits until the page's document (not the initial about:blank) has loaded.
    func waitLoaded() async throws {
        try await waitUntil("location.protocol !== 'about:' && document.readyState === 'complete'",
                            describe: "location.href + ' ' + document.readyState")
    }

    /// A PNG of the viewport.
    func screenshot() async throws -> Data {
        let data = try await call("Page.captureScreenshot", params: #"{"format":"png","captureBeyondViewport":false}"#,
                                  timeout: .seconds(30))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let base64 = object["data"] as? String, let png = Data(base64Encoded: base64)
        else { throw ProcessFailure("Page.captureScreenshot gave no image") }
        return png
    }

    func close() async { await connection.close() }
}

/// `text` as a JavaScript string literal.
func quoted(_ text: some StringProtocol) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: [String(text)])) ?? Data("[\"\"]".utf8)
    return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
}

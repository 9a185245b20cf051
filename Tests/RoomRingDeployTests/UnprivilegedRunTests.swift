import Foundation
import RoomRingSpawn
import RoomRingClient
import RoomRingCore
import Testing

/// Every artifact in deploy/ runs `roomring` as an unprivileged user (systemd `User=roomring`, the image's uid
/// 10001, Kubernetes `runAsNonRoot`). This runs the built binary the same way, as `nobody`, with no capabilities:
/// a shard and a proxy, a health check and a WebSocket hello through the proxy.
@Suite struct UnprivilegedRunTests {
    @Test func shardAndProxyServeAsAnUnprivilegedUser() async throws {
        guard getuid() == 0 else {
            print("SKIP unprivileged run: the tests already run unprivileged (uid \(getuid())), as the other suites show")
            return
        }
        guard let setpriv = Tool.require("setpriv", for: "running roomring as nobody") else { return }
        guard let binary = RoomRingBinary.url else {
            print("SKIP unprivileged run: roomring binary not found next to the tests")
            return
        }
        // A copy in a world-readable directory: the build directory may not be reachable by `nobody`.
        let directory = try TemporaryDirectory()
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.url.path)
        let installed = directory.url.appendingPathComponent("roomring")
        try FileManager.default.copyItem(at: binary, to: installed)
        let buildDirectory = binary.deletingLastPathComponent()
        for bundle in try FileManager.default.contentsOfDirectory(atPath: buildDirectory.path)
        where bundle.hasSuffix(".resources") {
            try FileManager.default.copyItem(at: buildDirectory.appendingPathComponent(bundle),
                                             to: directory.url.appendingPathComponent(bundle))
        }
        let ports = try LoopbackPort.free(4)
        let ring = RingDocument(epoch: 1, shards: [.init(id: "s1", address: "127.0.0.1:\(ports[0])",
                                                         admin: "127.0.0.1:\(ports[1])")])
        let ringFile = try directory.write("ring.json", String(decoding: ring.encoded(), as: UTF8.self))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: ringFile.path)

        let drop = ["--reuid=65534", "--regid=65534", "--clear-groups", installed.path]
        let common = ["--ring", ringFile.path, "--admin-token", "deploy-test", "--event-loops", "1"]
        let shard = try BackgroundProcess(setpriv, drop + ["shard", "--id", "s1", "--port", "\(ports[0])",
                                                           "--admin-port", "\(ports[1])"] + common,
                                          log: directory.url.appendingPathComponent("shard.log"))
        let proxy = try BackgroundProcess(setpriv, drop + ["proxy", "--port", "\(ports[2])",
                                                           "--admin-port", "\(ports[3])"] + common,
                                          log: directory.url.appendingPathComponent("proxy.log"))
        var failure: String?
        do {
            try await waitForReady(shard: ports[0], proxy: ports[2], processes: [shard, proxy])
            let member = try await WebSocketConnection.connect(host: "127.0.0.1", port: ports[2],
                                                               path: "/rooms/unprivileged?name=n")
            let hello = try await member.nextMessage(timeout: .seconds(10))
            #expect(hello == .hello(.init(shard: "s1", room: "unprivileged", seq: 0, epoch: 1, resumed: false)))
            await member.close()
        } catch {
            failure = "\(error)"
        }
        await proxy.stop()
        await shard.stop()
        defer { directory.remove() }
        if let failure {
            Issue.record("""
                roomring does not serve as an unprivileged user: \(failure)
                (a socket option that needs CAP_NET_ADMIN, such as SO_DEBUG, fails for every accepted connection)
                --- shard log:
                \(shard.log)
                --- proxy log:
                \(proxy.log)
                """)
        } else {
            #expect(shard.process.terminationStatus == 0 && proxy.process.terminationStatus == 0,
                    "SIGTERM should stop both gracefully")
        }
    }

    /// `/readyz` answered 200 by the shard directly and through the proxy.
    private func waitForReady(shard: Int, proxy: Int, processes: [BackgroundProcess]) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        var last = "nothing"
        while ContinuousClock.now < deadline {
            guard processes.allSatisfy({ $0.process.isRunning }) else { throw TestFailure("a process exited at start") }
            var ready = true
            for port in [shard, proxy] {
                do {
                    let response = try await HTTPClient.request("GET", host: "127.0.0.1", port: port, path: "/readyz",
                                                                timeout: .seconds(2))
                    last = "port \(port): \(response.status)"
                    ready = ready && response.status == 200
                } catch {
                    last = "port \(port): \(error)"
                    ready = false
                }
            }
            if ready { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("not ready within 20 s (last: \(last))")
    }
}

import Logging
import NIOCore
import RoomRingClient
import RoomRingCore

/// Active health checks: `GET /healthz` on every shard's client port each interval, with fall/rise thresholds.
struct HealthChecker: Sendable {
    let proxy: ProxyContext
    let logger: Logger

    /// Checks until the task is cancelled.
    func run() async {
        let interval = Duration.milliseconds(Int64(proxy.configuration.healthInterval * 1000))
        while !Task.isCancelled {
            await withTaskGroup(of: Void.self) { group in
                for shard in proxy.ring.document.shards {
                    group.addTask { await check(shard) }
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    private func check(_ shard: RingDocument.Shard) async {
        var passed = false
        if let address = HostPort(shard.address) {
            let timeout = Duration.milliseconds(Int64(max(0.2, proxy.configuration.healthInterval) * 1000))
            let response = try? await HTTPClient.request("GET", host: address.host, port: address.port,
                                                         path: "/healthz", timeout: timeout)
            passed = response?.status == 200
        }
        if let healthy = proxy.recordHealth(shard.id, passed: passed) {
            if healthy {
                logger.notice("shard \(shard.id) is healthy again")
            } else {
                logger.warning("shard \(shard.id) failed \(proxy.configuration.healthFall) health checks; marked down")
            }
        }
    }
}

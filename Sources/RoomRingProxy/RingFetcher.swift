import Logging
import NIOCore
import RoomRingClient
import RoomRingCore

/// Fetches rings from shards' admin ports (the 421 path and periodic convergence).
enum RingFetcher {
    /// Asks shard `id` for its ring and installs it if newer. Failures are logged, never thrown: the caller retries
    /// with whatever ring it has.
    static func refresh(from id: String, proxy: ProxyContext, logger: Logger = Logger(label: "roomring.proxy")) async {
        guard let shard = proxy.ring.document.shard(id: id), let admin = HostPort(shard.admin) else { return }
        do {
            let response = try await HTTPClient.request(
                "GET", host: admin.host, port: admin.port, path: "/ring",
                headers: proxy.configuration.adminToken.map { [("Authorization", "Bearer \($0)")] } ?? [],
                timeout: .seconds(2))
            guard response.status == 200 else {
                logger.warning("ring fetch from \(id) answered \(response.status)")
                return
            }
            let document = try RingDocument.decode(response.body)
            // Concurrent 421s fetch concurrently: losing the race to install the same epoch is not a failure.
            if proxy.ring.document.accepts(document), (try? proxy.install(document)) != nil {
                logger.notice("ring epoch \(document.epoch) fetched from \(id)")
            }
        } catch {
            logger.warning("ring fetch from \(id) failed: \(error)")
        }
    }
}

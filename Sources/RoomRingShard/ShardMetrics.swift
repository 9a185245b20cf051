import Prometheus

/// The shard's Prometheus metrics, one registry per shard so several shards can run in one process (tests).
public struct ShardMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let connections: Gauge
    let connectionsTotal: Counter
    let rooms: Gauge
    let messagesIn: Counter
    let messagesOut: Counter
    let duplicates: Counter
    let rejectedUpgrades: Counter
    let slowConsumerCloses: Counter
    let rateLimitCloses: Counter
    let protocolErrors: Counter
    let handoffs: Counter
    let handoffFailures: Counter
    let handoffsReceived: Counter

    init(shard: String) {
        let registry = PrometheusCollectorRegistry()
        let labels = [("shard", shard)]
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: .init(namespace: "roomring", subsystem: "shard", metricName: name,
                                                   unitName: "total", helpText: help), labels: labels)
        }
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: .init(namespace: "roomring", subsystem: "shard", metricName: name,
                                                 unitName: "", helpText: help), labels: labels)
        }
        self.registry = registry
        connections = gauge("connections", "Open WebSocket connections")
        connectionsTotal = counter("connections", "WebSocket connections accepted")
        rooms = gauge("rooms", "Rooms held in memory (with members or retained history)")
        messagesIn = counter("messages_in", "Chat messages accepted")
        messagesOut = counter("messages_out", "Frames delivered to members")
        duplicates = counter("duplicates", "Resent messages recognized by (client, id) and not broadcast again")
        rejectedUpgrades = counter("rejected_requests", "Requests to room endpoints answered with an error status")
        slowConsumerCloses = counter("slow_consumer_closes", "Members closed with 1013 past the outbound queue limit")
        rateLimitCloses = counter("rate_limit_closes", "Members closed with 1008 for exceeding the message rate")
        protocolErrors = counter("protocol_errors", "Connections failed for WebSocket protocol violations")
        handoffs = counter("handoffs", "Rooms handed to their new owner after a ring change")
        handoffFailures = counter("handoff_failures", "Handoff attempts the new owner did not accept (retried)")
        handoffsReceived = counter("handoffs_received", "Rooms received from their previous owner")
    }

    /// Prometheus text exposition.
    func render() -> [UInt8] { registry.emitToBuffer() }
}

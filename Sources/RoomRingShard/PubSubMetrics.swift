import Prometheus

/// Pub/sub mode's metrics, in the shard's registry.
struct PubSubMetrics: Sendable {
    let up: Gauge
    let publishFailures: Counter
    let catchUps: Counter
    let resyncs: Counter
    let malformed: Counter

    init(registry: PrometheusCollectorRegistry, shard: String) {
        let labels = [("shard", shard)]
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: .init(namespace: "roomring", subsystem: "shard", metricName: name,
                                                   unitName: "total", helpText: help), labels: labels)
        }
        up = registry.makeGauge(descriptor: .init(namespace: "roomring", subsystem: "shard", metricName: "broker_up",
                                                  unitName: "", helpText: "1 when every Redis connection is up"),
                                labels: labels)
        publishFailures = counter("broker_publish_failures", "Chats Redis did not accept (answered with an error)")
        catchUps = counter("broker_catch_ups", "Reads of a room's stream to fill a gap or catch up after a reconnect")
        resyncs = counter("broker_resyncs", "Rooms whose history Redis lost; local members were told to reconnect")
        malformed = counter("broker_malformed", "Messages on room channels that were not RoomRing chats")
    }
}

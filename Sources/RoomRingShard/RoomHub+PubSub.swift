import NIOCore
import Prometheus
import RoomRingCore

/// HTTP publish and polling in pub/sub mode: straight through Redis, with no local room needed (a publisher is not
/// a member, so nothing here subscribes).
extension RoomHub {
    /// The room's messages after `since` from its Redis stream, as `GET /rooms/<id>/messages` answers them.
    func pubSubHistory(of room: RoomID, since: UInt64) -> EventLoopFuture<HistoryOutcome> {
        guard let bus else { return loops[0].makeSucceededFuture(.unavailable) }
        let index = homeIndex(of: room)
        return loops[index].flatSubmit {
            bus.readStream(of: room, after: since, loop: index).map { read -> HistoryOutcome in
                let entries = read.entries.compactMap { published -> RoomLog.Entry? in
                    guard published.seq > since, published.seq <= read.counter,
                        case .chat(let chat)? = try? ServerMessage.decode(published.frame.readableBytesView)
                    else { return nil }
                    return RoomLog.Entry(seq: chat.seq, message: chat.message, from: chat.from, ts: chat.ts)
                }
                // Complete when nothing is missing between `since` and the room's seq (as RoomLog.since answers).
                let resumed = since == read.counter
                    || (since < read.counter && entries.first?.seq == since + 1
                        && UInt64(entries.count) == read.counter - since)
                return .page(seq: read.counter, resumed: resumed, entries: entries)
            }.recover { _ in .unavailable }
        }
    }
}

extension LoopHub {
    /// Publishes through Redis from the room's home loop (whose Redis connection keeps the room's order).
    func pubSubPublish(_ publish: RoomPublish, promise: EventLoopPromise<PublishOutcome>) {
        guard let hub, let bus = hub.bus else { return promise.succeed(.unavailable) }
        let metrics = hub.context.metrics
        bus.publish(room: publish.room, loop: index, message: publish.message, from: publish.from, ts: publish.ts,
                    dedup: publish.dedup.map { $0.client + "\n" + $0.id }, token: nil)
            .whenComplete { result in
                switch result {
                case .success(.accepted(let seq)):
                    metrics.messagesIn.increment()
                    promise.succeed(.accepted(seq))
                case .success(.duplicate(let seq)):
                    metrics.duplicates.increment()
                    promise.succeed(.duplicate(seq))
                case .failure:
                    bus.metrics.publishFailures.increment()
                    promise.succeed(.unavailable)
                }
            }
    }
}

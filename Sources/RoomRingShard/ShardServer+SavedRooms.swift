import Foundation
import Logging
import NIOCore
import RoomRingCore
import RoomRingHTTP

/// `--state-dir` (sticky mode): rooms survive a graceful restart. On SIGTERM the shard saves every room's state
/// (seq, history, dedup) before closing its members with 1012; at the next start it restores the rooms it still
/// owns before it accepts anyone, so members reconnect, resume with `since` and see `resumed: true`.
extension ShardServer {
    static func stateFile(_ configuration: ShardConfiguration) -> URL? {
        guard configuration.mode == .sticky, let directory = configuration.stateDirectory else { return nil }
        return URL(fileURLWithPath: directory).appendingPathComponent(SavedRooms.fileName(shard: configuration.id))
    }

    /// Loads saved rooms into `hub` and deletes the file: state from an older shutdown must never come back after a
    /// later crash, which saves nothing. A file that cannot be used is kept aside (`.unusable`) and logged.
    static func restoreRooms(context: ShardContext, hub: RoomHub, logger: Logger) async {
        guard let file = stateFile(context.configuration), FileManager.default.fileExists(atPath: file.path) else {
            return
        }
        let metadata: Logger.Metadata = ["shard": "\(context.configuration.id)", "file": "\(file.path)"]
        let saved: SavedRooms
        do {
            saved = try JSONDecoder().decode(SavedRooms.self, from: Data(contentsOf: file))
        } catch {
            let aside = file.appendingPathExtension("unusable")
            try? FileManager.default.removeItem(at: aside)
            try? FileManager.default.moveItem(at: file, to: aside)
            logger.error("saved rooms could not be read; starting without them", metadata: metadata.merging([
                "error": "\(error)", "moved_to": "\(aside.path)"]) { $1 })
            return
        }
        try? FileManager.default.removeItem(at: file)
        if let why = saved.mismatch(shard: context.configuration.id, epoch: context.ring.epoch) {
            logger.notice("saved rooms not restored: \(why)", metadata: metadata)
            return
        }
        var restored = 0
        for room in saved.rooms where context.owns(room.room) {
            if (try? await hub.receiveHandoff(room).get()) == true { restored += 1 }
        }
        logger.notice("rooms restored from the state directory", metadata: metadata.merging([
            "rooms": "\(restored)", "not_owned": "\(saved.rooms.count - restored)"]) { $1 })
    }

    /// Writes `rooms` to the state file (through a temporary file and a rename: a crash mid-write leaves no torn
    /// file behind).
    static func save(_ rooms: [RoomHandoff], context: ShardContext, logger: Logger) {
        guard let file = stateFile(context.configuration) else { return }
        let saved = SavedRooms(shard: context.configuration.id, epoch: context.ring.epoch,
                               savedAt: Int64(Date().timeIntervalSince1970 * 1000),
                               rooms: rooms.sorted { $0.room.rawValue < $1.room.rawValue })
        let temporary = file.appendingPathExtension("partial")
        do {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(JSONCoding.encode(saved).utf8).write(to: temporary)
            if FileManager.default.fileExists(atPath: file.path) { try FileManager.default.removeItem(at: file) }
            try FileManager.default.moveItem(at: temporary, to: file)
            logger.notice("rooms saved to the state directory", metadata: [
                "shard": "\(context.configuration.id)", "rooms": "\(rooms.count)", "file": "\(file.path)"])
        } catch {
            logger.error("rooms could not be saved; they restart empty", metadata: [
                "shard": "\(context.configuration.id)", "file": "\(file.path)", "error": "\(error)"])
        }
    }
}

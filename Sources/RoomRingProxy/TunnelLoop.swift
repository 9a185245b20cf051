import CRoomRingSys
import Glibc
import Logging
import NIOCore
import RoomRingCore
import Synchronization

/// The thread-safe face of a ``TunnelLoop``: its descriptors, and a queue of work for its thread.
final class TunnelLoopHandle: Sendable {
    let epollFD: Int32
    let wakeFD: Int32
    let listenFD: Int32
    private let inbox = Mutex<[@Sendable (TunnelLoop) -> Void]>([])
    private let finished = Atomic<Bool>(false)

    init(listenFD: Int32) throws {
        epollFD = rr_epoll_create()
        guard epollFD >= 0 else { throw SystemCallError("epoll_create1") }
        wakeFD = rr_eventfd()
        guard wakeFD >= 0 else {
            let error = SystemCallError("eventfd")
            close(epollFD)
            throw error
        }
        self.listenFD = listenFD
    }

    /// Runs `work` on the loop's thread, soon.
    func post(_ work: @escaping @Sendable (TunnelLoop) -> Void) {
        let wasEmpty = inbox.withLock { queue in
            queue.append(work)
            return queue.count == 1
        }
        // One wake-up per batch: the loop drains the eventfd before it takes the queue, so nothing is missed.
        if wasEmpty {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    func takeWork() -> [@Sendable (TunnelLoop) -> Void] { inbox.withLock { queue in defer { queue = [] }; return queue } }

    /// Closes the descriptors of a loop that never ran.
    func closeUnstarted() {
        close(listenFD)
        close(wakeFD)
        close(epollFD)
    }

    var isFinished: Bool { finished.load(ordering: .acquiring) }
    func markFinished() { finished.store(true, ordering: .releasing) }
}

/// One proxy thread: an edge-triggered epoll loop that accepts clients, reads request heads, connects to shards
/// and splices bytes, on raw descriptors.
///
/// Why not NIO channels here: a proxied handshake through NIO cost about 39 system calls and 5 KiB per idle
/// tunnel (interest changes at every step, address lookups, a pipeline per channel). This loop registers each
/// descriptor once, for reads and writes, edge-triggered, and never changes it: about 20 calls, the same as
/// HAProxy, and a tunnel is one small object. Admin, health checks and ring fetches stay on NIO.
///
/// Everything here runs on the loop's thread; other threads reach it only through ``TunnelLoopHandle/post(_:)``.
final class TunnelLoop {
    let handle: TunnelLoopHandle
    let proxy: ProxyContext
    let epollFD: Int32
    private var listenFD: Int32
    /// Tunnels by descriptor (client and shard side both point at their tunnel).
    private var slots: [Tunnel?] = []
    /// Where reads land before they are written on; bytes are copied only when a writer is full.
    let scratch: UnsafeMutableRawBufferPointer
    static let scratchSize = 64 * 1024
    /// Descriptors closed during this turn. They are closed after the turn's events are handled, so a number
    /// cannot be reused while a stale event for it is still in the batch.
    private var closing: [Int32] = []
    /// Monotonic nanoseconds, read once per turn.
    private(set) var now: UInt64 = 0
    private var serials: UInt64 = 0
    /// Head and connect timeouts are the same for every connection, so deadlines arrive in order: FIFOs, not heaps.
    /// Entries name a tunnel by descriptor and serial, not by reference, so a tunnel that closed is freed at once
    /// instead of a timeout later; entries of tunnels that moved on are skipped when they come due.
    var headDeadlines = CircularBuffer<(deadline: UInt64, fd: Int32, serial: UInt64)>()
    var connectDeadlines = CircularBuffer<(deadline: UInt64, fd: Int32, serial: UInt64, attempt: Int)>()
    private let sweepPeriod: UInt64
    private var nextSweep: UInt64
    private var acceptPausedUntil: UInt64?
    private var running = true
    let logger: Logger

    /// Quiet sweeps in a row that close a tunnel: four sweeps per idle timeout, so a tunnel closed was idle for at
    /// least the timeout and at most 1.25 × it.
    static let quietSweepsToClose: UInt8 = 5

    init(handle: TunnelLoopHandle, proxy: ProxyContext) {
        self.handle = handle
        self.proxy = proxy
        self.epollFD = handle.epollFD
        self.listenFD = handle.listenFD
        self.logger = proxy.logger
        scratch = .allocate(byteCount: Self.scratchSize, alignment: 16)
        sweepPeriod = max(UInt64(proxy.configuration.idleTunnelTimeout * 1e9) / 4, 10_000_000)
        now = Self.monotonic()
        nextSweep = now + sweepPeriod
    }

    deinit { scratch.deallocate() }

    static func monotonic() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    static func nanoseconds(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds) * 1e9) }

    // MARK: - The loop

    /// Serves until ``stop()``, then closes every descriptor it owns.
    func run() {
        _ = rr_epoll_add(epollFD, handle.wakeFD, UInt32(RR_EPOLLIN), UInt64(UInt32(bitPattern: handle.wakeFD)))
        // Level-triggered: a backlog left after one turn's accepts is reported again next turn.
        _ = rr_epoll_add(epollFD, listenFD, UInt32(RR_EPOLLIN), UInt64(UInt32(bitPattern: listenFD)))
        let capacity: Int32 = 256
        let events = UnsafeMutablePointer<rr_event>.allocate(capacity: Int(capacity))
        defer { events.deallocate() }
        while running {
            let count = rr_epoll_wait(epollFD, events, capacity, waitTimeout())
            now = Self.monotonic()
            if count < 0, errno != EINTR {
                logger.critical("epoll_wait failed: \(SystemCallError("epoll_wait"))")
                break
            }
            var acceptReady = false
            for i in 0..<Int(max(0, count)) {
                let fd = Int32(truncatingIfNeeded: events[i].token)
                if fd == listenFD {
                    acceptReady = true
                } else if fd == handle.wakeFD {
                    var counter: UInt64 = 0
                    _ = read(fd, &counter, 8)
                    for work in handle.takeWork() { work(self) }
                } else if Int(fd) < slots.count, let tunnel = slots[Int(fd)] {
                    ready(tunnel, fd: fd, events: events[i].events)
                }
            }
            if acceptReady { acceptClients() }
            fireTimers()
            for fd in closing { close(fd) }
            closing.removeAll(keepingCapacity: true)
        }
        for case let tunnel? in slots where tunnel.phase != .closed { closeTunnel(tunnel) }
        for fd in closing { close(fd) }
        stopListening()
        close(handle.wakeFD)
        close(epollFD)
        handle.markFinished()
    }

    /// Ends ``run()`` after this turn.
    func stop() { running = false }

    /// Closes the listener: connections already accepted carry on.
    func stopListening() {
        guard listenFD >= 0 else { return }
        _ = rr_epoll_del(epollFD, listenFD)
        close(listenFD)
        listenFD = -1
    }

    /// Milliseconds until the next deadline.
    private func waitTimeout() -> Int32 {
        var next = nextSweep
        if let first = headDeadlines.first { next = min(next, first.deadline) }
        if let first = connectDeadlines.first { next = min(next, first.deadline) }
        if let paused = acceptPausedUntil { next = min(next, paused) }
        let current = Self.monotonic()
        guard next > current else { return 0 }
        return Int32(min((next - current + 999_999) / 1_000_000, 60_000))
    }

    private func fireTimers() {
        while let first = headDeadlines.first, first.deadline <= now {
            headDeadlines.removeFirst()
            if let tunnel = tunnel(fd: first.fd, serial: first.serial), tunnel.phase == .readingHead {
                headTimedOut(tunnel)
            }
        }
        while let first = connectDeadlines.first, first.deadline <= now {
            connectDeadlines.removeFirst()
            guard let tunnel = tunnel(fd: first.fd, serial: first.serial) else { continue }
            if tunnel.phase == .connecting || tunnel.phase == .resolving, tunnel.setup?.attempt == first.attempt {
                connectFailed(tunnel, reason: "connect timed out")
            }
        }
        if let paused = acceptPausedUntil, paused <= now, listenFD >= 0 {
            acceptPausedUntil = nil
            _ = rr_epoll_add(epollFD, listenFD, UInt32(RR_EPOLLIN), UInt64(UInt32(bitPattern: listenFD)))
        }
        if nextSweep <= now {
            nextSweep = now + sweepPeriod
            sweepIdleTunnels()
        }
    }

    // MARK: - Descriptors

    private func acceptClients() {
        // A bounded batch per turn keeps established tunnels served while a burst of clients arrives.
        for _ in 0..<32 where listenFD >= 0 {
            var peer = sockaddr_storage()
            var length = socklen_t(0)
            let fd = rr_accept(listenFD, &peer, &length)
            guard fd >= 0 else {
                switch errno {
                case EAGAIN, EWOULDBLOCK: return
                case EINTR, ECONNABORTED, EPROTO: continue
                default:
                    // Out of descriptors or memory: stop accepting for a moment instead of spinning on the backlog.
                    logger.error("accept failed; pausing for 100 ms: \(SystemCallError("accept4"))")
                    _ = rr_epoll_del(epollFD, listenFD)
                    acceptPausedUntil = now + 100_000_000
                    return
                }
            }
            serials &+= 1
            let tunnel = Tunnel(serial: serials, client: fd, peer: peer, limits: proxy.configuration.headLimits)
            guard register(fd, for: tunnel) else {
                close(fd)
                continue
            }
            headDeadlines.append((now + Self.nanoseconds(proxy.configuration.headTimeout), fd, serials))
        }
    }

    /// Watches `fd` for reads, writes and the peer's end, edge-triggered, once for its whole life.
    func register(_ fd: Int32, for tunnel: Tunnel) -> Bool {
        let index = Int(fd)
        if index >= slots.count { slots.append(contentsOf: repeatElement(nil, count: max(index + 1 - slots.count, slots.count))) }
        slots[index] = tunnel
        let events = UInt32(RR_EPOLLIN | RR_EPOLLOUT | RR_EPOLLRDHUP) | UInt32(RR_EPOLLET)
        guard rr_epoll_add(epollFD, fd, events, UInt64(UInt32(bitPattern: fd))) == 0 else {
            logger.error("epoll_ctl failed: \(SystemCallError("epoll_ctl"))")
            slots[index] = nil
            return false
        }
        return true
    }

    /// Forgets `fd` now and closes it at the end of the turn.
    func release(_ fd: Int32) {
        guard fd >= 0 else { return }
        if Int(fd) < slots.count { slots[Int(fd)] = nil }
        closing.append(fd)
    }

    /// Closes the shard side of a tunnel still being set up (to answer the client, or to try another shard).
    func dropBackend(_ tunnel: Tunnel) {
        release(tunnel.backend.fd)
        tunnel.backend = Tunnel.Side(fd: -1)
    }

    /// Closes both sides of `tunnel`, once.
    func closeTunnel(_ tunnel: Tunnel) {
        guard tunnel.phase != .closed else { return }
        if tunnel.phase == .spliced { proxy.tunnelClosed(tunnel.shard) }
        tunnel.phase = .closed
        tunnel.setup = nil
        release(tunnel.client.fd)
        release(tunnel.backend.fd)
    }

    /// The tunnel of `fd` if it is still the one numbered `serial` (a descriptor number can be reused).
    func tunnel(fd: Int32, serial: UInt64) -> Tunnel? {
        guard Int(fd) < slots.count, let tunnel = slots[Int(fd)], tunnel.serial == serial,
            tunnel.client.fd == fd else { return nil }
        return tunnel
    }

    /// Closes spliced tunnels idle for the idle timeout, and answers `504` to requests whose shard has sent
    /// nothing for as long (a shard that accepts and then hangs would otherwise hold its clients for ever; a
    /// healthy shard answers within seconds, a publish at most after the handoff wait).
    private func sweepIdleTunnels() {
        for (fd, slot) in slots.enumerated() {
            guard let tunnel = slot, tunnel.client.fd == Int32(fd),
                tunnel.phase == .spliced || tunnel.phase == .awaitingResponse else { continue }
            if tunnel.active {
                tunnel.active = false
                tunnel.quietSweeps = 0
                continue
            }
            tunnel.quietSweeps += 1
            guard tunnel.quietSweeps >= Self.quietSweepsToClose else { continue }
            if tunnel.phase == .spliced {
                logger.debug("idle tunnel closed", metadata: ["shard": "\(tunnel.shard)"])
                closeTunnel(tunnel)
            } else {
                shardTimedOut(tunnel)
            }
        }
    }

    // MARK: - Readiness

    /// One edge on one of `tunnel`'s descriptors.
    private func ready(_ tunnel: Tunnel, fd: Int32, events: UInt32) {
        let isClient = fd == tunnel.client.fd
        let hangup = events & UInt32(RR_EPOLLHUP | RR_EPOLLERR) != 0
        let writable = events & UInt32(RR_EPOLLOUT | RR_EPOLLHUP | RR_EPOLLERR) != 0
        if events & UInt32(RR_EPOLLIN | RR_EPOLLRDHUP | RR_EPOLLHUP | RR_EPOLLERR) != 0 {
            let closing = events & UInt32(RR_EPOLLRDHUP | RR_EPOLLHUP | RR_EPOLLERR) != 0
            if isClient {
                tunnel.client.readable = true
                if closing { tunnel.client.peerClosing = true }
            } else {
                tunnel.backend.readable = true
                if closing { tunnel.backend.peerClosing = true }
            }
        }
        switch tunnel.phase {
        case .readingHead:
            readHead(tunnel)
        case .resolving, .fetchingRing:
            if isClient, hangup { closeTunnel(tunnel) }
        case .connecting:
            if isClient {
                if hangup { closeTunnel(tunnel) }
            } else if writable {
                backendConnected(tunnel)
            }
        case .awaitingResponse:
            if isClient, hangup { return closeTunnel(tunnel) }
            serviceAwaiting(tunnel, flushBackend: !isClient && writable)
        case .spliced:
            serviceSpliced(tunnel, flushClient: isClient && writable, flushBackend: !isClient && writable)
        case .closed:
            break
        }
    }
}

@available(*, unavailable)
extension TunnelLoop: Sendable {}

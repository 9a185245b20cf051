import Dispatch
import Glibc
import Logging
import NIOCore
import NIOHTTP1
import Prometheus
import RoomRingCore
import RoomRingHTTP

/// From accept to splice: read the head, route, connect, forward, read the shard's answer.
extension TunnelLoop {
    func readHead(_ tunnel: Tunnel) {
        guard let setup = tunnel.setup else { return }
        while tunnel.client.readable {
            let count = read(tunnel.client.fd, scratch.baseAddress, scratch.count)
            if count == 0 { return closeTunnel(tunnel) }  // gone before a whole head: nobody to answer
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    tunnel.client.readable = false
                    return
                }
                return closeTunnel(tunnel)
            }
            if count < scratch.count, !tunnel.client.peerClosing { tunnel.client.readable = false }
            switch setup.parser.scan(UnsafeRawBufferPointer(rebasing: scratch[0..<count])) {
            case .needMore:
                continue
            case .rejected(let error):
                if error.closeWithoutResponse { return fail(tunnel, status: nil) }
                return fail(tunnel, status: error.status, code: error.reason.rawValue, message: error.description)
            case .complete(let head):
                setup.requestID = RequestIDGenerator.sanitized(head.requestID) ?? proxy.requestIDs.next()
                setup.head = head
                let buffered = setup.parser.bufferedBytes
                setup.received = buffered
                if buffered.count > head.length { setup.extra = Array(buffered[head.length...]) }
                setup.parser = RequestHeadParser(limits: setup.parser.limits)  // let the head's buffer go
                return route(tunnel)
            }
        }
    }

    func headTimedOut(_ tunnel: Tunnel) {
        fail(tunnel, status: 408, code: "head_timeout",
             message: "request head not received within \(proxy.configuration.headTimeout) s")
    }

    /// Picks the shard and starts connecting (again, after a `421`).
    func route(_ tunnel: Tunnel) {
        guard let setup = tunnel.setup, let head = setup.head else { return }
        guard !proxy.isDraining else {
            return fail(tunnel, status: 503, code: "draining", message: "proxy is shutting down", retryAfter: true)
        }
        guard let route = proxy.route(room: head.room) else {
            return fail(tunnel, status: 503, code: "no_shard", message: "no active shard in the ring", retryAfter: true)
        }
        tunnel.shard = route.shard.id
        setup.routedEpoch = route.epoch
        setup.attempt += 1
        let deadline = now + Self.nanoseconds(proxy.configuration.connectTimeout)
        connectDeadlines.append((deadline, tunnel.client.fd, tunnel.serial, setup.attempt))
        if let address = route.address { return connect(tunnel, to: address) }
        guard let name = HostPort(route.shard.address) else {
            return fail(tunnel, status: 503, code: "no_shard",
                        message: "shard \(route.shard.id) has no usable address", retryAfter: true)
        }
        // A DNS name (Kubernetes) is looked up per connection, off this thread: getaddrinfo blocks.
        tunnel.phase = .resolving
        let (handle, fd, serial, attempt) = (self.handle, tunnel.client.fd, tunnel.serial, setup.attempt)
        DispatchQueue.global().async {
            let address = Result { try SocketAddress.makeAddressResolvingHost(name.host, port: name.port) }
            handle.post { loop in
                guard let tunnel = loop.tunnel(fd: fd, serial: serial), tunnel.phase == .resolving,
                    tunnel.setup?.attempt == attempt else { return }
                switch address {
                case .success(let address): loop.connect(tunnel, to: address)
                case .failure(let error): loop.connectFailed(tunnel, reason: "\(error)")
                }
            }
        }
    }

    private func connect(_ tunnel: Tunnel, to address: SocketAddress) {
        guard let setup = tunnel.setup, let head = setup.head else { return }
        let fd: Int32
        switch Sockets.connect(to: address) {
        case .failure(let error): return connectFailed(tunnel, reason: "\(error)")
        case .success(let connected): fd = connected
        }
        tunnel.backend = Tunnel.Side(fd: fd)
        guard register(fd, for: tunnel) else {
            close(fd)
            tunnel.backend = Tunnel.Side(fd: -1)
            return connectFailed(tunnel, reason: "epoll_ctl failed")
        }
        tunnel.phase = .connecting
        var bytes = forwardedHead(head, setup)
        // On a retry, the body the first shard already got goes out again first.
        bytes += setup.sentBody ?? []
        bytes += setup.extra
        setup.recordSent(setup.extra)
        setup.extra = []
        tunnel.backend.pending = bytes
        if head.hasBody {
            // A body follows: let it flow now, or the shard would wait for it while we wait for the answer.
            setup.streamingBody = true
        }
    }

    /// The head as the shard gets it: with `X-Forwarded-For` and `X-Request-ID`, and `Connection: close` for
    /// plain HTTP (one request per tunnel: a second request on the connection could name another room).
    private func forwardedHead(_ facts: RequestHeadFacts, _ setup: Setup) -> [UInt8] {
        let address = Sockets.ipAddress(of: setup.peer)
        let received = setup.received[0..<facts.length]
        if facts.isWebSocketUpgrade, facts.requestID == nil {
            // The usual handshake: nothing to remove, so the bytes the client sent go on as they are, and the
            // two headers are added before the empty line.
            var bytes: [UInt8] = []
            bytes.reserveCapacity(facts.length + 40 + address.utf8.count + setup.requestID.utf8.count)
            bytes += received.dropLast(2)
            bytes += Self.forwardedForPrefix
            bytes += address.utf8
            bytes += Self.requestIDPrefix
            bytes += setup.requestID.utf8
            bytes += Self.headEnd
            return bytes
        }
        // Headers to remove: parse the head in full (it parsed before, so it does again) and write it anew.
        var parser = RequestHeadParser(limits: setup.parser.limits)
        guard case .complete(var head) = parser.feed(received) else { return Array(received) }
        head.headers.removeAll { $0.name.equalsIgnoringASCIICase("x-request-id") }
        if !facts.isWebSocketUpgrade {
            head.headers.removeAll { $0.name.equalsIgnoringASCIICase("connection") }
            head.headers.append(.init(name: "Connection", value: "close"))
        }
        return head.serialized(adding: [.init(name: "X-Forwarded-For", value: address),
                                        .init(name: RequestIDGenerator.header, value: setup.requestID)])
    }

    private static let forwardedForPrefix = Array("X-Forwarded-For: ".utf8)
    private static let requestIDPrefix = Array("\r\n\(RequestIDGenerator.header): ".utf8)
    private static let headEnd = Array("\r\n\r\n".utf8)

    /// The first writable edge of the shard connection: connected, or failed.
    func backendConnected(_ tunnel: Tunnel) {
        if let code = Self.flush(&tunnel.backend) {
            return connectFailed(tunnel, reason: "\(SystemCallError("connect", code))")
        }
        tunnel.phase = .awaitingResponse
        serviceAwaiting(tunnel, flushBackend: false)
    }

    func connectFailed(_ tunnel: Tunnel, reason: String) {
        dropBackend(tunnel)
        proxy.metrics.connectFailures.increment()
        let shard = proxy.ring.document.shard(id: tunnel.shard)
        let address = shard?.address ?? "?"
        logger.warning("shard unreachable", metadata: metadata(tunnel, [
            "shard": "\(tunnel.shard)", "address": "\(address)", "error": "\(reason)"]))
        fail(tunnel, status: 503, code: "shard_unreachable",
             message: "shard \(tunnel.shard) at \(address) is unreachable", retryAfter: true)
    }

    /// Connected, waiting for the shard's response head; a request body flows meanwhile.
    func serviceAwaiting(_ tunnel: Tunnel, flushBackend: Bool) {
        guard let setup = tunnel.setup else { return }
        if flushBackend, Self.flush(&tunnel.backend) != nil { return closeTunnel(tunnel) }
        var moved = false
        if setup.streamingBody,
            !Self.pump(from: &tunnel.client, to: &tunnel.backend, scratch: scratch, moved: &moved, record: setup.recordSent)
        {
            return closeTunnel(tunnel)
        }
        if moved { tunnel.active = true }
        readResponse(tunnel, setup)
    }

    private func readResponse(_ tunnel: Tunnel, _ setup: Setup) {
        while tunnel.backend.readable {
            let count = read(tunnel.backend.fd, scratch.baseAddress, scratch.count)
            if count == 0 {
                tunnel.backend.inputEnded = true
                return badGateway(tunnel, "shard \(tunnel.shard) closed without an answer")
            }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    tunnel.backend.readable = false
                    return
                }
                return badGateway(tunnel, "shard \(tunnel.shard) failed: \(SystemCallError("read"))")
            }
            if count < scratch.count, !tunnel.backend.peerClosing { tunnel.backend.readable = false }
            tunnel.active = true
            let searchFrom = setup.response.count
            setup.response.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
            if let end = ResponseHeadScan.headEnd(setup.response, searchingFrom: searchFrom) {
                return responded(tunnel, setup, headEnd: end)
            }
            if setup.response.count > Setup.maxResponseHead {
                return badGateway(tunnel, "shard \(tunnel.shard) sent a response head over 16 KiB")
            }
        }
    }

    func shardTimedOut(_ tunnel: Tunnel) {
        dropBackend(tunnel)
        fail(tunnel, status: 504, code: "shard_timeout",
             message: "shard \(tunnel.shard) sent no answer within \(proxy.configuration.idleTunnelTimeout) s")
    }

    private func badGateway(_ tunnel: Tunnel, _ message: String) {
        dropBackend(tunnel)
        fail(tunnel, status: 502, code: "bad_gateway", message: message)
    }

    private func responded(_ tunnel: Tunnel, _ setup: Setup, headEnd: Int) {
        guard let status = ResponseHeadScan.status(setup.response) else {
            return badGateway(tunnel, "shard \(tunnel.shard) sent no valid HTTP response")
        }
        if status == 421, let epoch = ResponseHeadScan.epoch(setup.response, headEnd: headEnd),
            epoch > setup.routedEpoch, !setup.retried, setup.sentBody != nil {
            return retryWithNewerRing(tunnel, setup, shardEpoch: epoch)
        }
        splice(tunnel, firstBytes: setup.response)
    }

    /// The shard knows a newer ring than this request was routed with: fetch it from that shard (unless another
    /// request already did), then route again, once.
    private func retryWithNewerRing(_ tunnel: Tunnel, _ setup: Setup, shardEpoch: UInt64) {
        setup.retried = true
        setup.response = []
        proxy.metrics.misdirectedRetries.increment()
        logger.notice("shard has a newer ring; retrying once", metadata: metadata(tunnel, [
            "shard": "\(tunnel.shard)", "shard_epoch": "\(shardEpoch)", "routed_epoch": "\(setup.routedEpoch)"]))
        dropBackend(tunnel)
        tunnel.phase = .fetchingRing
        let (handle, proxy, shard, fd, serial) = (self.handle, self.proxy, tunnel.shard, tunnel.client.fd, tunnel.serial)
        let fetch = shardEpoch > proxy.ring.epoch
        Task {
            if fetch { await RingFetcher.refresh(from: shard, proxy: proxy) }
            handle.post { loop in
                guard let tunnel = loop.tunnel(fd: fd, serial: serial), tunnel.phase == .fetchingRing else { return }
                loop.route(tunnel)
            }
        }
    }

    // MARK: - Answers from the proxy itself

    /// Answers with a JSON error and closes, or just closes when `status` is nil.
    func fail(_ tunnel: Tunnel, status: Int?, code: String = "", message: String = "", retryAfter: Bool = false) {
        proxy.metrics.rejected.increment()
        if let setup = tunnel.setup, setup.requestID.isEmpty { setup.requestID = proxy.requestIDs.next() }
        guard let status else {
            logger.debug("connection closed: not HTTP", metadata: metadata(tunnel, [:]))
            return closeTunnel(tunnel)
        }
        logger.info("request answered by the proxy", metadata: metadata(tunnel, ["status": "\(status)", "code": "\(code)"]))
        let response = HTTPResponse.error(HTTPResponseStatus(statusCode: status), code: code, message,
                                          headers: retryAfter ? ["Retry-After": "1"] : [:])
        // A fresh socket's send buffer takes an answer this small whole; if it cannot, the client is not reading.
        let answer = response.closingBytes(requestID: tunnel.setup?.requestID)
        _ = answer.withUnsafeBytes { send(tunnel.client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        closeTunnel(tunnel)
    }

    /// The fields every log line of a request carries.
    func metadata(_ tunnel: Tunnel, _ extra: Logger.Metadata) -> Logger.Metadata {
        var metadata = extra
        guard let setup = tunnel.setup else { return metadata }
        if !setup.requestID.isEmpty { metadata["request_id"] = "\(setup.requestID)" }
        if let room = setup.head?.room { metadata["room"] = "\(room)" }
        metadata["peer"] = "\(Sockets.ipAddress(of: setup.peer))"
        return metadata
    }
}

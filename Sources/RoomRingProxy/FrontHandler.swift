import Logging
import NIOCore
import Prometheus
import NIOPosix
import RoomRingCore

/// The first handler on every client connection: reads the request head (bounded in size and time), picks the
/// shard, connects, forwards the head with `X-Forwarded-For`, and once the shard answers, glues the two byte streams
/// together and removes itself. It never parses anything after the response head.
///
/// While it works it swallows `read()`, so a client cannot push more bytes at the proxy than one head.
final class FrontHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case readingHead
        case connecting(RequestHead)
        case awaitingResponse(RequestHead, backend: any Channel, shard: String)
        case spliced
        case failed
    }

    private let proxy: ProxyContext
    private var parser: RequestHeadParser
    private var state = State.readingHead
    /// Bytes after the head that arrived with it (a POST body, or frames sent eagerly).
    private var extra: [UInt8] = []
    private var headTimer: Scheduled<Void>?
    private var retried = false
    /// Epoch of the ring the current attempt was routed with (a 421 is judged against it, not the latest ring).
    private var routedEpoch: UInt64 = 0
    /// A request body is flowing to the shard before its answer.
    private var streamingBody = false
    /// Body bytes already sent to a shard, kept so a retry after `421` can send them again; nil once the body
    /// outgrew ``maxReplayBody`` (such a request is not retried: the client gets the `421`).
    private var sentBody: [UInt8]? = []
    /// Largest request body kept for a retry (a publish is at most the shards' message limit, 64 KiB by default).
    static let maxReplayBody = 64 * 1024
    private var context: ChannelHandlerContext?
    /// `X-Request-ID`: the client's when it is safe, else a new one; on every log line of this request.
    private var requestID = ""
    private var room: RoomID?

    init(proxy: ProxyContext) {
        self.proxy = proxy
        self.parser = RequestHeadParser(limits: proxy.configuration.headLimits)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        headTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(proxy.configuration.headTimeout * 1000))) {
            bound.value.headTimedOut()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        headTimer?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let chunk = unwrapInboundIn(data)
        switch state {
        case .readingHead:
            switch parser.feed(chunk.readableBytesView) {
            case .needMore:
                return
            case .rejected(let error):
                headTimer?.cancel()
                if error.closeWithoutResponse {
                    fail(context, status: nil)
                } else {
                    fail(context, status: error.status, code: error.reason.rawValue, message: error.description)
                }
            case .complete(let head):
                headTimer?.cancel()
                requestID = RequestIDGenerator.sanitized(head.header("x-request-id")) ?? proxy.requestIDs.next()
                room = head.room
                extra = Array(parser.bufferedBytes[head.length...])
                connect(context, head: head)
            }
        case .connecting, .awaitingResponse:
            // A request body or early frames: hold them for the shard (reads are paused, so this stays small).
            extra += chunk.readableBytesView
            if case .awaitingResponse(_, let backend, _) = state {
                backend.writeAndFlush(ByteBuffer(bytes: extra), promise: nil)
                recordSent(extra)
                extra = []
            }
        case .spliced, .failed:
            break
        }
    }

    func read(context: ChannelHandlerContext) {
        // Only the head is read before the tunnel exists; the glue handler takes over reads afterwards.
        if case .readingHead = state {
            context.read()
        } else if streamingBody, case .awaitingResponse = state {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .awaitingResponse(_, let backend, _) = state { backend.close(promise: nil) }
        state = .failed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func headTimedOut() {
        guard case .readingHead = state, let context else { return }
        fail(context, status: 408, code: "head_timeout",
             message: "request head not received within \(proxy.configuration.headTimeout) s")
    }

    // MARK: - Connecting

    private func connect(_ context: ChannelHandlerContext, head: RequestHead) {
        state = .connecting(head)
        guard !proxy.isDraining else {
            return fail(context, status: 503, code: "draining", message: "proxy is shutting down", retryAfter: true)
        }
        routedEpoch = proxy.ring.epoch
        guard let route = proxy.route(room: head.room) else {
            return fail(context, status: 503, code: "no_shard", message: "no active shard in the ring", retryAfter: true)
        }
        let shard = route.shard
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let client = context.channel
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .connectTimeout(.milliseconds(Int64(proxy.configuration.connectTimeout * 1000)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.recvAllocator, value: ProxyServer.receiveAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(BackendHeadHandler())
                }
            }
        let connecting: EventLoopFuture<any Channel>
        if let address = route.address {
            connecting = bootstrap.connect(to: address)
        } else if let address = HostPort(shard.address) {
            connecting = bootstrap.connect(host: address.host, port: address.port)
        } else {
            return fail(context, status: 503, code: "no_shard", message: "shard \(shard.id) has no usable address",
                        retryAfter: true)
        }
        connecting.whenComplete { result in
            let handler = bound.value
            guard client.isActive, let context = handler.context else {
                if case .success(let backend) = result { backend.close(promise: nil) }
                return
            }
            switch result {
            case .failure(let error):
                handler.proxy.metrics.connectFailures.increment()
                handler.proxy.logger.warning("shard unreachable", metadata: handler.logMetadata([
                    "shard": "\(shard.id)", "address": "\(shard.address)", "error": "\(error)"]))
                handler.fail(context, status: 503, code: "shard_unreachable",
                             message: "shard \(shard.id) at \(shard.address) is unreachable", retryAfter: true)
            case .success(let backend):
                handler.connected(context, head: head, backend: backend, shard: shard.id)
            }
        }
    }

    private func connected(_ context: ChannelHandlerContext, head: RequestHead, backend: any Channel, shard: String) {
        state = .awaitingResponse(head, backend: backend, shard: shard)
        let forwarded = [RequestHead.Header(name: "X-Forwarded-For", value: context.remoteAddress?.ipAddress ?? "unknown"),
                         RequestHead.Header(name: RequestIDGenerator.header, value: requestID)]
        var head = head
        head.headers.removeAll { $0.name.lowercased() == "x-request-id" }
        // One request per tunnel for plain HTTP: a second request on the same connection could name another room.
        if !head.isWebSocketUpgrade {
            head.headers.removeAll { $0.name.lowercased() == "connection" }
            head.headers.append(.init(name: "Connection", value: "close"))
        }
        var bytes = head.serialized(adding: forwarded)
        // On a retry, the body the first shard already got goes out again first.
        bytes += sentBody ?? []
        bytes += extra
        recordSent(extra)
        extra = []
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        do {
            let sniffer = try backend.pipeline.syncOperations.handler(type: BackendHeadHandler.self)
            sniffer.onHead = { status, epoch, buffered in bound.value.responded(status: status, epoch: epoch, buffered) }
        } catch {
            return fail(context, status: 502, code: "bad_gateway", message: "internal pipeline error")
        }
        backend.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
        if head.header("content-length").map({ $0 != "0" }) ?? (head.header("transfer-encoding") != nil) {
            // A body follows: let it flow now, or the shard would wait for it while we wait for the answer.
            streamingBody = true
            context.read()
        }
    }

    private func recordSent(_ bytes: [UInt8]) {
        guard !bytes.isEmpty, sentBody != nil else { return }
        sentBody?.append(contentsOf: bytes)
        if let count = sentBody?.count, count > Self.maxReplayBody { sentBody = nil }
    }

    // MARK: - The shard answered

    private func responded(status: Int?, epoch: UInt64?, _ buffered: ByteBuffer) {
        guard let context, case .awaitingResponse(let head, let backend, let shard) = state else { return }
        guard let status else {
            backend.close(promise: nil)
            return fail(context, status: 502, code: "bad_gateway", message: "shard \(shard) closed without an answer")
        }
        if status == 421, let epoch, epoch > routedEpoch, !retried, sentBody != nil {
            // The shard knows a newer ring than this request was routed with: fetch it from that shard (unless a
            // concurrent request already did), then route again once.
            retried = true
            proxy.metrics.misdirectedRetries.increment()
            proxy.logger.notice("shard has a newer ring; retrying once", metadata: logMetadata([
                "shard": "\(shard)", "shard_epoch": "\(epoch)", "routed_epoch": "\(routedEpoch)"]))
            backend.close(promise: nil)
            state = .connecting(head)
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let proxy = self.proxy
            let loop = context.eventLoop
            let fetch = epoch > proxy.ring.epoch
            Task {
                if fetch { await RingFetcher.refresh(from: shard, proxy: proxy) }
                loop.execute {
                    let handler = bound.value
                    guard let context = handler.context else { return }
                    handler.connect(context, head: head)
                }
            }
            return
        }
        splice(context, backend: backend, shard: shard, firstBytes: buffered)
    }

    private func splice(_ context: ChannelHandlerContext, backend: any Channel, shard: String, firstBytes: ByteBuffer) {
        state = .spliced
        let (front, back) = GlueHandler.matchedPair()
        do {
            let sniffer = try backend.pipeline.syncOperations.handler(type: BackendHeadHandler.self)
            try backend.pipeline.syncOperations.addHandler(back)
            backend.pipeline.syncOperations.removeHandler(sniffer, promise: nil)
            try context.pipeline.syncOperations.addHandler(front)
        } catch {
            backend.close(promise: nil)
            return fail(context, status: 502, code: "bad_gateway", message: "internal pipeline error")
        }
        proxy.tunnelOpened(shard)
        // Counted closed by the client side's handler, not a closeFuture callback: one allocation less per tunnel.
        front.countClose(in: proxy, shard: shard)
        if let sweeper = proxy.sweeper(for: context.eventLoop) { front.watch(with: sweeper) }
        proxy.logger.debug("tunnel opened", metadata: logMetadata(["shard": "\(shard)"]))
        context.writeAndFlush(wrapOutboundOut(firstBytes), promise: nil)
        if !extra.isEmpty {
            backend.writeAndFlush(ByteBuffer(bytes: extra), promise: nil)
            extra = []
        }
        // read() after removal would not reach the channel: ask first, then step aside.
        context.read()
        backend.read()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    // MARK: - Errors

    /// Answers with a JSON error and closes, or just closes when `status` is nil.
    private func fail(_ context: ChannelHandlerContext, status: Int?, code: String = "", message: String = "",
                      retryAfter: Bool = false) {
        state = .failed
        proxy.metrics.rejected.increment()
        if requestID.isEmpty { requestID = proxy.requestIDs.next() }
        guard let status else {
            proxy.logger.debug("connection closed: not HTTP", metadata: logMetadata([:]))
            context.close(promise: nil)
            return
        }
        proxy.logger.info("request answered by the proxy", metadata: logMetadata([
            "status": "\(status)", "code": "\(code)"]))
        let body = #"{"error":{"code":"# + JSONText.quoted(code) + #","message":"# + JSONText.quoted(message) + "}}\n"
        var head = "HTTP/1.1 \(status) \(Self.reason(status))\r\nContent-Type: application/json\r\n"
        head += "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        if retryAfter { head += "Retry-After: 1\r\n" }
        head += "\(RequestIDGenerator.header): \(requestID)\r\n"
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: head + "\r\n" + body))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// The fields every log line of this request carries.
    private func logMetadata(_ extra: Logger.Metadata) -> Logger.Metadata {
        var metadata = extra
        if !requestID.isEmpty { metadata["request_id"] = "\(requestID)" }
        if let room { metadata["room"] = "\(room)" }
        if let peer = context?.remoteAddress?.ipAddress { metadata["peer"] = "\(peer)" }
        return metadata
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 408: "Request Timeout"
        case 431: "Request Header Fields Too Large"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Error"
        }
    }
}

@available(*, unavailable)
extension FrontHandler: Sendable {}

import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// Metrics in Prometheus text on `/metrics`, liveness on `/healthz`, readiness on `/readyz`, for
/// the coordinator and the workers.
public enum Observability {
    /// The process-wide registry; `bootstrap()` routes swift-metrics into it once. Metrics created
    /// before the bootstrap stay no-ops, so a process bootstraps before it builds its components.
    public static let registry = PrometheusCollectorRegistry()

    private static let bootstrapped: Void = {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Checkpoint state runs from bytes to tens of megabytes; recovery takes seconds (a lease).
        factory.valueHistogramBuckets["sluice_checkpoint_bytes"] = [1, 4, 16, 64, 256, 1_024, 4_096, 16_384, 65_536].map { $0 * 1_024 }
        factory.durationHistogramBuckets["sluice_partition_recovery_seconds"] =
            [0.25, 0.5, 1, 2, 4, 6, 8, 10, 15, 20, 30, 60].map { Duration.milliseconds(Int64($0 * 1_000)) }
        MetricsSystem.bootstrap(factory)
    }()

    public static func bootstrap() { _ = bootstrapped }
}

/// The endpoint, bound by `start` (so that a taken address fails at start-up, before anything
/// else runs) and served as a `Service`: it closes on graceful shutdown or cancellation. Put it
/// first in a `ServiceGroup`, so that it is shut down last and answers while the others stop.
public final class OpsServer: Service, Sendable {
    private let channel: any Channel
    public let port: Int

    /// Starts serving on `host:port` (port 0: any free port). `ready` is asked on every `/readyz`.
    /// One request per connection; a connection that has not had its answer within the handshake
    /// timeout is closed, and at most `limits.maxPending` are open at once (a new one closes the
    /// oldest). `option` names the flag the address came from, for a bind error.
    public static func start(host: String, port: Int, limits: ConnectionLimits = ConnectionLimits(), option: String = "--metrics",
                             ready: @escaping @Sendable () -> Bool) async throws -> OpsServer {
        Observability.bootstrap()
        let socket = try BoundSocket.bind(host: host, port: port, option: option)
        let pending = PendingConnections(limit: limits.maxPending)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        HandshakeDeadline(pending: pending, timeout: limits.handshakeTimeout, establishOnFirstRead: false))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(OpsHandler(ready: ready))
                }
            }
        let channel = try await bootstrap.withBoundSocket(socket.descriptor).get()
        return OpsServer(channel: channel, port: socket.port)
    }

    private init(channel: any Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    public func stop() async {
        try? await channel.close()
    }

    /// Serves until graceful shutdown or cancellation, then closes the port.
    public func run() async {
        try? await gracefulShutdown()
        await stop()
    }
}

private final class OpsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let ready: @Sendable () -> Bool
    private var path = "/"

    init(ready: @escaping @Sendable () -> Bool) { self.ready = ready }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = String(head.uri.split(separator: "?").first ?? "/")
        case .body:
            break
        case .end:
            let (status, body, type): (HTTPResponseStatus, [UInt8], String)
            switch path {
            case "/metrics":
                (status, body, type) = (.ok, Observability.registry.emitToBuffer(), "text/plain; version=0.0.4")
            case "/healthz":
                (status, body, type) = (.ok, Array("ok\n".utf8), "text/plain")
            case "/readyz":
                let isReady = ready()
                (status, body, type) = (isReady ? .ok : .serviceUnavailable, Array((isReady ? "ready\n" : "not ready\n").utf8), "text/plain")
            default:
                (status, body, type) = (.notFound, Array("not found: try /metrics, /healthz, /readyz\n".utf8), "text/plain")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.count))
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            // Close once the response is out; the handler context may only be touched on its loop.
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
        }
    }
}

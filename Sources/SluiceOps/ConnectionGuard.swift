import NIOCore
import Synchronization

/// How the network ports treat connections that have not proved anything yet. Without these, idle
/// TCP connections (no certificate needed) held every file descriptor and locked workers out.
public struct ConnectionLimits: Sendable {
    /// From accept until a connection is established (gRPC: its TLS handshake done and its first
    /// bytes read; HTTP: the response sent); it is closed when this passes first.
    public var handshakeTimeout: Duration
    /// An established gRPC connection with no call open is closed after this.
    public var idleTimeout: Duration
    /// Connections not yet established, per port. A new one beyond it closes the oldest, so a
    /// flood cannot keep a real client out, and cannot take more than this many descriptors.
    public var maxPending: Int

    public init(handshakeTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(30),
                maxPending: Int = ConnectionLimits.pendingCap(openFiles: OpenFileLimit.current)) {
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.maxPending = maxPending
    }

    /// An eighth of the open-file limit per port, between 16 and 1,024: the two ports' pending
    /// connections leave most descriptors to the stores, the sinks and the established workers.
    public static func pendingCap(openFiles: Int) -> Int {
        min(1_024, max(16, openFiles / 8))
    }
}

/// The connections of one port that are not yet established, oldest first by admission number.
public final class PendingConnections: Sendable {
    public let limit: Int
    private let state = Mutex<(next: UInt64, channels: [UInt64: any Channel])>((0, [:]))

    public init(limit: Int) { self.limit = max(1, limit) }

    public var count: Int { state.withLock { $0.channels.count } }

    /// Admits `channel`; when that puts the port over its limit, the oldest pending connection is closed.
    func admit(_ channel: any Channel) -> UInt64 {
        let (id, evicted) = state.withLock { s -> (UInt64, (any Channel)?) in
            let id = s.next
            s.next += 1
            s.channels[id] = channel
            guard s.channels.count > limit, let oldest = s.channels.keys.min() else { return (id, nil) }
            return (id, s.channels.removeValue(forKey: oldest))
        }
        evicted?.close(promise: nil)
        return id
    }

    /// The connection is established, or closed.
    func settle(_ id: UInt64) {
        _ = state.withLock { $0.channels.removeValue(forKey: id) }
    }
}

/// Admits a connection to its port's `PendingConnections` and closes it unless it is established
/// within the handshake timeout. `establishOnFirstRead`: the first bytes that reach this handler
/// establish it (placed right after the TLS handler, those are the first decrypted bytes, which a
/// peer only gets to send once its certificate has been verified); otherwise the connection stays
/// pending, and bounded by the timeout, until it closes (HTTP: one request per connection).
public final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny

    private let pending: PendingConnections
    private let timeout: Duration
    private let establishOnFirstRead: Bool
    private var id: UInt64?
    private var deadline: Scheduled<Void>?

    public init(pending: PendingConnections, timeout: Duration, establishOnFirstRead: Bool) {
        self.pending = pending
        self.timeout = timeout
        self.establishOnFirstRead = establishOnFirstRead
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        id = pending.admit(channel)
        deadline = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            channel.close(promise: nil)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) { settle() }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if establishOnFirstRead { settle() }
        context.fireChannelRead(data)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        settle()
        context.fireChannelInactive()
    }

    private func settle() {
        deadline?.cancel()
        deadline = nil
        if let id { pending.settle(id) }
        id = nil
    }
}

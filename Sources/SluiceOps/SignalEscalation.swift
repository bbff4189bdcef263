#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import ServiceLifecycle
import UnixSignals

/// The second SIGTERM or SIGINT ends a daemon at once. A `ServiceGroup` turns the first into a
/// graceful shutdown (`gracefulShutdownSignals`), and its cancellation signals may not overlap
/// those, so this service counts them itself: on the second it throws, and the group (its
/// failure behaviour is to cancel) cancels every service. Put it first in the group, so that it is
/// shut down last and listens for the whole of the graceful shutdown. A service stuck in a blocking
/// call cannot see the cancellation, so the process also exits (128 + the signal) one second later
/// whatever is still running, from a dispatch thread rather than the cooperative pool.
public struct SignalEscalation: Service {
    /// The signal that ended the process (the CLI exits with 128 + its number).
    public struct SecondSignal: Error, CustomStringConvertible {
        public var signal: Int32
        public var description: String { "second signal \(signal): stopping at once" }
    }

    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let logger = self.logger
        try await cancelWhenGracefulShutdown {
            var seen = 0
            for await signal in signals {
                seen += 1
                if seen >= 2 {
                    logger.warning("second signal (\(signal)): stopping at once, without waiting for the graceful shutdown")
                    let code = 128 + signal.rawValue
                    DispatchQueue.global().asyncAfter(deadline: .now() + 1) { exit(code) }
                    throw SecondSignal(signal: signal.rawValue)
                }
            }
        }
    }
}

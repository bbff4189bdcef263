import Logging

extension Logger {
    /// A logger that hands each message, as one line, to `write`: for callers that still log
    /// through a `(String) -> Void` closure (the worker side, until it takes a `Logger` too).
    /// Metadata and levels are dropped; the message is the line as it was before swift-log.
    public static func lines(_ label: String, _ write: @escaping @Sendable (String) -> Void) -> Logger {
        Logger(label: label) { _ in LineLogHandler(write: write) }
    }
}

struct LineLogHandler: LogHandler {
    let write: @Sendable (String) -> Void
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) { write("\(event.message)") }
}

// Logging for every Sluice process: swift-log, with one handler that writes whole lines to stderr
// as text (for people) or JSON (one object per line, for Kubernetes log pipelines).
//
// JSON line: {"time":"2026-12-01T10:00:00.123Z","level":"info","message":"…","component":"worker",
// then the metadata keys (job, partition, epoch, worker, coordinator, …) at the top level}.
// Text line: `2026-12-01T10:00:00.123Z info worker: message job=bids partition=3`.
//
// Secrets never reach a log line: URLs are logged through their `redacted` form, and no handler
// prints a password, key or certificate body (see the test that greps a run's logs).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import SluiceCore

public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

public enum SluiceLogging {
    /// Installs the handler for the whole process; call once, first thing in a command.
    public static func bootstrap(level: Logger.Level, format: LogFormat) {
        LoggingSystem.bootstrap { label in
            var handler = SluiceLogHandler(component: label, format: format)
            handler.logLevel = level
            return handler
        }
    }

    /// The logger of a component (`coordinator`, `worker`, `runner`, `store`, …), with metadata.
    public static func logger(_ component: String, _ metadata: Logger.Metadata = [:]) -> Logger {
        var logger = Logger(label: component)
        for (key, value) in metadata { logger[metadataKey: key] = value }
        return logger
    }
}

/// Formats one record per line and writes it to stderr with one `write`, so that lines of
/// concurrent tasks never interleave.
public struct SluiceLogHandler: LogHandler {
    public let component: String
    public let format: LogFormat
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    public init(component: String, format: LogFormat) {
        self.component = component
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line = format(level: event.level, message: "\(event.message)", metadata: merged, time: SluiceLogHandler.now())
        line.utf8CString.withUnsafeBufferPointer { bytes in
            var written = 0
            let total = bytes.count - 1  // without the NUL
            while written < total {
                let n = write(2, bytes.baseAddress! + written, total - written)
                if n <= 0 { break }
                written += n
            }
        }
    }

    /// The line for one record, with its newline.
    public func format(level: Logger.Level, message: String, metadata: Logger.Metadata, time: String) -> String {
        let keys = metadata.keys.sorted()
        switch format {
        case .json:
            var out = "{\"time\":\(JSONText.quote(time)),\"level\":\(JSONText.quote(level.rawValue)),"
                + "\"message\":\(JSONText.quote(message)),\"component\":\(JSONText.quote(component))"
            for key in keys where !SluiceLogHandler.reserved.contains(key) {
                out += ",\(JSONText.quote(key)):\(JSONText.value(metadata[key]!))"
            }
            return out + "}\n"
        case .text:
            var out = "\(time) \(level.rawValue) \(component): \(message)"
            for key in keys { out += " \(key)=\(metadata[key]!.description)" }
            return out + "\n"
        }
    }

    /// Keys the JSON line owns; metadata cannot overwrite them.
    static let reserved: Set<String> = ["time", "level", "message", "component"]

    /// Now, as RFC 3339 UTC with milliseconds: `2026-12-01T10:00:00.123Z`.
    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return rfc3339(seconds: Int(spec.tv_sec), milliseconds: Int(spec.tv_nsec / 1_000_000))
    }

    static func rfc3339(seconds: Int, milliseconds: Int) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let ms = milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }
}

/// Just enough JSON writing for log lines.
enum JSONText {
    static func quote(_ s: String) -> String { JSONValue.quote(s) }

    static func value(_ v: Logger.Metadata.Value) -> String {
        switch v {
        case .string(let s): return quote(s)
        case .stringConvertible(let c):
            // Integers stay numbers, so that `partition` and `epoch` can be filtered as such.
            let text = c.description
            if c is any BinaryInteger { return text }
            return quote(text)
        case .array(let items): return "[" + items.map(value).joined(separator: ",") + "]"
        case .dictionary(let d):
            return "{" + d.keys.sorted().map { "\(quote($0)):\(value(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }
}

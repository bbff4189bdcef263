import Logging

extension Logger {
    /// A logger that drops everything: the default where a caller (a test, a one-off tool) has no
    /// logger to pass.
    public static let silent = Logger(label: "sluice.silent", factory: { _ in SwiftLogNoOpLogHandler() })
}

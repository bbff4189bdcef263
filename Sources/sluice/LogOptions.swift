import ArgumentParser
import Logging
import SluiceOps

/// `--log-level` and `--log-format`, shared by every long-running command.
struct LogOptions: ParsableArguments {
    @Option(help: "Least level logged: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"
    @Option(help: "text (for people) or json (one object per line, for log pipelines).")
    var logFormat: String = "text"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got '\(logLevel)'")
        }
        guard LogFormat(rawValue: logFormat) != nil else {
            throw ValidationError("--log-format must be text or json; got '\(logFormat)'")
        }
    }

    /// Installs the process's log handler; call first in `run()`.
    func bootstrap() {
        SluiceLogging.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .info, format: LogFormat(rawValue: logFormat) ?? .text)
    }
}

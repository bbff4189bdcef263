import Logging
import ServiceLifecycle
import SluiceOps
import SluiceRuntime
import Synchronization

/// `sluice run` as a service group: SIGINT or SIGTERM stops the run gracefully (every partition
/// takes a last checkpoint, then the summary is printed and the process exits 0: run it again to
/// resume); a second signal ends it at once.
final class LocalRunService: Service {
    let runner: LocalRunner
    let logger: Logger
    private let result = Mutex<LocalRunner.Summary?>(nil)

    init(runner: LocalRunner, logger: Logger) {
        self.runner = runner
        self.logger = logger
    }

    func run() async throws {
        let runner = self.runner, logger = self.logger
        let summary = try await withGracefulShutdownHandler {
            try await runner.run(logger: logger)
        } onGracefulShutdown: {
            logger.info("stopping: a last checkpoint of every partition")
            runner.requestStop()
        }
        result.withLock { $0 = summary }
    }

    static func run(_ runner: LocalRunner, logger: Logger) async throws -> LocalRunner.Summary {
        let service = LocalRunService(runner: runner, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: SignalEscalation(logger: logger)),
                       .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        guard let summary = service.result.withLock({ $0 }) else {
            throw LocalRunner.PartitionStopped(description: "the run ended without a summary")
        }
        return summary
    }
}

import SluiceCore
import SluiceProtocol

/// A worker's session message, as the coordinator acts on it: the one translation from the wire
/// (`Sluice_V1_WorkerMessage`) to plain values, used by the session handler and by the fuzz target
/// that feeds decoded messages to `CoordinatorCore` (`apply`).
public enum WorkerSessionMessage: Sendable {
    case hello(workerID: String)
    case heartbeat(progress: [CoordinatorCore.Progress], eventsPerSecond: Double)
    case change(CoordinatorService.Inbound)

    /// Nil for a message without a kind (a newer worker's, or garbage that decoded as empty).
    public init?(_ message: Sluice_V1_WorkerMessage) {
        switch message.kind {
        case .hello(let hello):
            self = .hello(workerID: hello.workerID)
        case .heartbeat(let heartbeat):
            self = .heartbeat(progress: heartbeat.partitions.map {
                CoordinatorCore.Progress(partition: Int($0.partition), epoch: $0.epoch, offset: $0.offset,
                                         committedOffset: $0.committedOffset, watermark: $0.watermark,
                                         lag: $0.lag, finished: $0.finished)
            }, eventsPerSecond: heartbeat.eventsPerSecond)
        case .released(let released):
            self = .change(.released(partition: Int(released.partition), epoch: released.epoch, committedOffset: released.committedOffset))
        case .fenced(let fenced):
            self = .change(.fenced(partition: Int(fenced.partition), epoch: fenced.epoch))
        case .failed(let failed):
            self = .change(.failed(partition: Int(failed.partition), epoch: failed.epoch, reason: failed.reason))
        case nil:
            return nil
        }
    }
}

extension CoordinatorCore {
    /// What `CoordinatorService` does to its core for a message of `worker`'s session (without the
    /// durable write, the logs and the metrics): a hello joins, a heartbeat renews (and rejoins a
    /// forgotten worker), a release, fencing or failure moves the partition.
    public mutating func apply(_ message: WorkerSessionMessage, from worker: String, now: Int64) throws -> [Action] {
        switch message {
        case .hello:
            return try join(worker, now: now)
        case .heartbeat(let progress, let eventsPerSecond):
            return try heartbeat(worker, progress: progress, eventsPerSecond: eventsPerSecond, now: now).actions
        case .change(.released(let partition, let epoch, let committedOffset)):
            return try released(worker, partition: partition, epoch: epoch, committedOffset: committedOffset, now: now)
        case .change(.fenced(let partition, let epoch)):
            return try lost(worker, partition: partition, epoch: epoch, now: now)
        case .change(.failed(let partition, let epoch, _)):
            return try failed(worker, partition: partition, epoch: epoch, now: now)
        }
    }
}

/// Where one running partition stands: what a worker's host reads from its tasks
/// (`PartitionHost.progress()`), sends in each heartbeat, and the coordinator keeps for
/// `sluice status` (`CoordinatorCore.heartbeat`). One type on both sides of the wire.
public struct PartitionProgress: Sendable, Equatable {
    public var partition: Int
    public var epoch: Int64
    /// The next offset the partition will read.
    public var offset: Int64
    /// The offset of the last committed checkpoint.
    public var committedOffset: Int64
    public var watermark: Int64
    /// Lines not yet committed, including what the source has left (see `PartitionRunner.lag`).
    public var lag: Int64
    public var finished: Bool

    public init(partition: Int, epoch: Int64, offset: Int64, committedOffset: Int64, watermark: Int64, lag: Int64, finished: Bool) {
        self.partition = partition
        self.epoch = epoch
        self.offset = offset
        self.committedOffset = committedOffset
        self.watermark = watermark
        self.lag = lag
        self.finished = finished
    }
}

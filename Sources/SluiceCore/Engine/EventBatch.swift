/// Decoded events waiting for the window operator, in columns. The processor decodes a run of
/// lines into a batch, then the operator consumes it in one tight loop: one dynamic call per batch
/// instead of one per event.
struct EventBatch {
    /// Values per event for the aggregates: column `u` feeds `AggregateLayout.updates[u]`.
    let stride: Int
    var keys: [UInt64] = []
    var times: [Int64] = []
    /// The watermark before each event: lateness is decided against it.
    var watermarks: [Int64] = []
    var values: [Int64] = []
    /// Indices of the events the operator found late.
    var late: [Int] = []

    init(stride: Int, capacity: Int) {
        self.stride = stride
        keys.reserveCapacity(capacity)
        times.reserveCapacity(capacity)
        watermarks.reserveCapacity(capacity)
        values.reserveCapacity(capacity * stride)
    }

    var count: Int { keys.count }

    mutating func removeAll() {
        keys.removeAll(keepingCapacity: true)
        times.removeAll(keepingCapacity: true)
        watermarks.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        late.removeAll(keepingCapacity: true)
    }
}

/// Decoded events waiting for the window operator, in columns of fixed capacity. The processor
/// decodes a run of lines into a batch, then the operator consumes it in one tight loop: one dynamic
/// call per batch instead of one per event, and plain stores instead of array appends.
final class EventBatch {
    let capacity: Int
    /// Values per event for the aggregates: column `u` feeds `AggregateLayout.updates[u]` (at least 1).
    let stride: Int
    let keys: UnsafeMutablePointer<UInt64>
    let times: UnsafeMutablePointer<Int64>
    /// The watermark before each event: lateness is decided against it.
    let watermarks: UnsafeMutablePointer<Int64>
    let values: UnsafeMutablePointer<Int64>
    var count = 0
    /// Indices of the events the operator found late.
    var late: [Int] = []
    /// The events the operator refused because a sum would overflow: index, the overflowing sum's
    /// slot, and the start of the window named in the reason.
    var overflows: [(index: Int, slot: Int, start: Int64)] = []

    init(stride: Int, capacity: Int) {
        self.capacity = capacity
        self.stride = max(1, stride)
        keys = .allocate(capacity: capacity)
        times = .allocate(capacity: capacity)
        watermarks = .allocate(capacity: capacity)
        values = .allocate(capacity: capacity * self.stride)
        values.initialize(repeating: 0, count: capacity * self.stride)
    }

    deinit {
        keys.deallocate()
        times.deallocate()
        watermarks.deallocate()
        values.deallocate()
    }

    var isFull: Bool { count == capacity }

    func removeAll() {
        count = 0
        late.removeAll(keepingCapacity: true)
        overflows.removeAll(keepingCapacity: true)
    }
}

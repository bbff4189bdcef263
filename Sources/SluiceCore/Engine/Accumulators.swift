// Aggregate state of open windows, kept flat: every window owns `width` Int64 slots in one array.
// Slot 0 is the count; each sum/avg, min and max aggregate has one more. An avg reads its sum slot
// and the count, so `{sum: price}` and `{avg: price}` share nothing but stay cheap.

public struct AggregateLayout: Sendable, Equatable {
    public enum Update: Sendable, Equatable { case sum, min, max }
    public enum Output: Sendable, Equatable {
        case count
        case slot(Int)          // sum, min or max: the value of a slot
        case average(sum: Int)  // Double(sum) / Double(count)
    }

    /// Slots per window.
    public let width: Int
    /// For each non-count slot: which field updates it, and how.
    public let updates: [(field: Int, slot: Int, kind: Update)]
    /// One per aggregate in spec order.
    public let outputs: [Output]

    public init(pipeline: Pipeline) {
        var updates: [(field: Int, slot: Int, kind: Update)] = []
        var outputs: [Output] = []
        for aggregate in pipeline.aggregates {
            guard let name = aggregate.field, let field = pipeline.schema.index(of: name) else {
                outputs.append(.count)
                continue
            }
            let slot = updates.count + 1
            switch aggregate.function {
            case .count: outputs.append(.count); continue
            case .sum: updates.append((field, slot, .sum)); outputs.append(.slot(slot))
            case .avg: updates.append((field, slot, .sum)); outputs.append(.average(sum: slot))
            case .min: updates.append((field, slot, .min)); outputs.append(.slot(slot))
            case .max: updates.append((field, slot, .max)); outputs.append(.slot(slot))
            }
        }
        self.updates = updates
        self.outputs = outputs
        width = updates.count + 1
    }

    public static func == (a: AggregateLayout, b: AggregateLayout) -> Bool {
        a.width == b.width && a.outputs == b.outputs
            && a.updates.elementsEqual(b.updates) { $0.field == $1.field && $0.slot == $1.slot && $0.kind == $1.kind }
    }
}

/// Accumulator slots for many windows, with a free list so fired windows are reused.
struct AccumulatorPool {
    let layout: AggregateLayout
    private(set) var slots: [Int64] = []
    private var free: [Int32] = []

    init(layout: AggregateLayout) { self.layout = layout }

    var liveCount: Int { slots.count / layout.width - free.count }

    mutating func allocate() -> Int32 {
        let index: Int32
        if let reused = free.popLast() {
            index = reused
        } else {
            index = Int32(slots.count / layout.width)
            slots.append(contentsOf: repeatElement(0, count: layout.width))
        }
        let base = Int(index) * layout.width
        slots[base] = 0
        for u in layout.updates {
            switch u.kind {
            case .sum: slots[base + u.slot] = 0
            case .min: slots[base + u.slot] = Int64.max
            case .max: slots[base + u.slot] = Int64.min
            }
        }
        return index
    }

    mutating func release(_ index: Int32) { free.append(index) }

    /// Adds event `row` of `batch` to window `index`.
    @inline(__always)
    mutating func add(_ index: Int32, _ batch: UnsafePointer<Int64>) {
        let base = Int(index) * layout.width
        slots.withUnsafeMutableBufferPointer { s in
            s[base] &+= 1
            for (u, update) in layout.updates.enumerated() {
                let v = batch[u]
                switch update.kind {
                case .sum: s[base + update.slot] &+= v
                case .min: if v < s[base + update.slot] { s[base + update.slot] = v }
                case .max: if v > s[base + update.slot] { s[base + update.slot] = v }
                }
            }
        }
    }

    /// Folds window `from` into window `into` (session merges).
    mutating func merge(_ from: Int32, into: Int32) {
        let a = Int(from) * layout.width, b = Int(into) * layout.width
        slots[b] &+= slots[a]
        for u in layout.updates {
            switch u.kind {
            case .sum: slots[b + u.slot] &+= slots[a + u.slot]
            case .min: slots[b + u.slot] = Swift.min(slots[b + u.slot], slots[a + u.slot])
            case .max: slots[b + u.slot] = Swift.max(slots[b + u.slot], slots[a + u.slot])
            }
        }
    }

    func values(_ index: Int32) -> ArraySlice<Int64> {
        let base = Int(index) * layout.width
        return slots[base..<(base + layout.width)]
    }

    mutating func load(_ index: Int32, from reader: inout BinaryReader) throws {
        let base = Int(index) * layout.width
        for i in 0..<layout.width { slots[base + i] = try reader.readVarInt() }
    }

    func store(_ index: Int32, to writer: inout BinaryWriter) {
        let base = Int(index) * layout.width
        for i in 0..<layout.width { writer.writeVarInt(slots[base + i]) }
    }
}

/// Results fired by a window operator: one row per (window, key), aggregates kept raw (see
/// `AggregateLayout.outputs` for how to render them).
public struct RowBuffer: Sendable, Equatable {
    public let width: Int
    public private(set) var starts: [Int64] = []
    public private(set) var keys: [UInt64] = []
    public private(set) var slots: [Int64] = []

    public init(width: Int) { self.width = width }

    public var count: Int { starts.count }
    public var isEmpty: Bool { starts.isEmpty }

    mutating func append(start: Int64, key: UInt64, values: ArraySlice<Int64>) {
        starts.append(start)
        keys.append(key)
        slots.append(contentsOf: values)
    }

    public mutating func removeAll() {
        starts.removeAll(keepingCapacity: true)
        keys.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
    }

    public func slot(row: Int, _ index: Int) -> Int64 { slots[row * width + index] }

    mutating func reserve(like other: RowBuffer) {
        starts.reserveCapacity(other.starts.count)
        keys.reserveCapacity(other.keys.count)
        slots.reserveCapacity(other.slots.count)
    }
}

// Aggregate state of open windows, kept flat: every window owns `width` Int64 slots in one array.
// Slot 0 is the count; each sum/avg, min and max aggregate has one more. An avg reads its sum slot
// and the count, so `{sum: price}` and `{avg: price}` share nothing but stay cheap. Sums never
// wrap: an event that would overflow one is refused (docs/DESIGN.md, "Overflow").

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
            case .countDistinct, .first, .last:
                preconditionFailure("\(aggregate.columnName) runs as records, never on the integer path (Pipeline.isIntegerCSV)")
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

/// Accumulator slots for many windows, with a free list so fired windows are reused. The slots
/// live in raw memory and each update kind has its own list of (batch column, slot): adding an
/// event (the engine's hottest loop, once per event and window) is plain loads and stores, with no
/// uniqueness check of an array and no switch per aggregate.
final class AccumulatorPool {
    let layout: AggregateLayout
    private let width: Int
    private var slots: UnsafeMutablePointer<Int64>
    private var capacity: Int  // windows
    private var used = 0       // windows ever allocated (free ones included)
    private var free: [Int32] = []
    /// (batch column, slot) of each sum, min and max update.
    private let sums: [(column: Int, slot: Int)]
    private let mins: [(column: Int, slot: Int)]
    private let maxes: [(column: Int, slot: Int)]

    init(layout: AggregateLayout) {
        self.layout = layout
        width = layout.width
        capacity = 256
        slots = .allocate(capacity: capacity * width)
        let columns = layout.updates.enumerated()
        sums = columns.filter { $0.element.kind == .sum }.map { ($0.offset, $0.element.slot) }
        mins = columns.filter { $0.element.kind == .min }.map { ($0.offset, $0.element.slot) }
        maxes = columns.filter { $0.element.kind == .max }.map { ($0.offset, $0.element.slot) }
    }

    deinit { slots.deallocate() }

    var liveCount: Int { used - free.count }

    func allocate() -> Int32 {
        let index: Int32
        if let reused = free.popLast() {
            index = reused
        } else {
            if used == capacity { grow() }
            index = Int32(used)
            used += 1
        }
        let base = slots + Int(index) * width
        base[0] = 0
        for u in sums { base[u.slot] = 0 }
        for u in mins { base[u.slot] = Int64.max }
        for u in maxes { base[u.slot] = Int64.min }
        return index
    }

    private func grow() {
        let larger = UnsafeMutablePointer<Int64>.allocate(capacity: capacity * 2 * width)
        larger.moveInitialize(from: slots, count: used * width)
        slots.deallocate()
        slots = larger
        capacity *= 2
    }

    func release(_ index: Int32) { free.append(index) }

    /// Adds an event (`row`: its batch columns) to window `index`, unless one of the window's sums
    /// would overflow: then the window is left as it was. Returns 0 when added, else the slot of
    /// the first sum (in spec order) that would overflow. (Slot 0 is the count, never a sum.)
    @inline(__always)
    func add(_ index: Int32, _ row: UnsafePointer<Int64>) -> Int {
        let s = slots + Int(index) * width
        var overflow = false
        for u in sums {
            let (sum, o) = s[u.slot].addingReportingOverflow(row[u.column])
            s[u.slot] = sum
            overflow = overflow || o
        }
        if overflow { return undo(s, row) }
        s[0] &+= 1  // a count would need 2^63 events to overflow
        for u in mins where row[u.column] < s[u.slot] { s[u.slot] = row[u.column] }
        for u in maxes where row[u.column] > s[u.slot] { s[u.slot] = row[u.column] }
        return 0
    }

    /// Takes the wrapped sums back out (exact: wrapping addition is undone by wrapping subtraction)
    /// and names the first that overflowed.
    @inline(never)
    private func undo(_ s: UnsafeMutablePointer<Int64>, _ row: UnsafePointer<Int64>) -> Int {
        for u in sums { s[u.slot] &-= row[u.column] }
        return firstOverflow(s, row) ?? 0
    }

    private func firstOverflow(_ s: UnsafeMutablePointer<Int64>, _ row: UnsafePointer<Int64>) -> Int? {
        sums.first { s[$0.slot].addingReportingOverflow(row[$0.column]).overflow }?.slot
    }

    /// The slot of the first sum (spec order) of window `index` that adding `row` would overflow.
    func firstOverflow(_ index: Int32, _ row: UnsafePointer<Int64>) -> Int? {
        firstOverflow(slots + Int(index) * width, row)
    }

    /// The slot of the first sum (spec order) that would overflow if windows `merging` and the event
    /// `row` were one window (a session merge), computed exactly: every stored sum fits an Int64, so
    /// an Int128 total of fewer than 2^63 of them cannot overflow.
    func firstOverflow(merging windows: some Collection<Int32>, _ row: UnsafePointer<Int64>) -> Int? {
        for u in sums {
            var total = Int128(row[u.column])
            for w in windows { total += Int128(slots[Int(w) * width + u.slot]) }
            if Int64(exactly: total) == nil { return u.slot }
        }
        return nil
    }

    /// The largest magnitude of the event's values that feed sums.
    @inline(__always)
    func largestSummand(_ row: UnsafePointer<Int64>) -> UInt64 {
        var largest: UInt64 = 0
        for u in sums { largest = Swift.max(largest, row[u.column].magnitude) }
        return largest
    }

    /// The largest magnitude of a sum of window `index`.
    func largestSum(_ index: Int32) -> UInt64 {
        let s = slots + Int(index) * width
        var largest: UInt64 = 0
        for u in sums { largest = Swift.max(largest, s[u.slot].magnitude) }
        return largest
    }

    /// Adds an event to a merged session that `firstOverflow(merging:_:)` found exact: the merge may
    /// have passed through a wrapped sum (signed values), and wrapping arithmetic lands on the exact
    /// total, which fits.
    func addChecked(_ index: Int32, _ row: UnsafePointer<Int64>) {
        let s = slots + Int(index) * width
        s[0] &+= 1
        for u in sums { s[u.slot] &+= row[u.column] }
        for u in mins where row[u.column] < s[u.slot] { s[u.slot] = row[u.column] }
        for u in maxes where row[u.column] > s[u.slot] { s[u.slot] = row[u.column] }
    }

    /// Folds window `from` into window `into` (session merges, checked first with
    /// `firstOverflow(merging:_:)`).
    func merge(_ from: Int32, into: Int32) {
        let a = slots + Int(from) * width, b = slots + Int(into) * width
        b[0] &+= a[0]
        for u in sums { b[u.slot] &+= a[u.slot] }
        for u in mins { b[u.slot] = Swift.min(b[u.slot], a[u.slot]) }
        for u in maxes { b[u.slot] = Swift.max(b[u.slot], a[u.slot]) }
    }

    func values(_ index: Int32) -> UnsafeBufferPointer<Int64> {
        UnsafeBufferPointer(start: slots + Int(index) * width, count: width)
    }

    func load(_ index: Int32, from reader: inout BinaryReader) throws {
        let base = slots + Int(index) * width
        for i in 0..<width { base[i] = try reader.readVarInt() }
    }

    func store(_ index: Int32, to writer: inout BinaryWriter) {
        let base = slots + Int(index) * width
        for i in 0..<width { writer.writeVarInt(base[i]) }
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

    mutating func append(start: Int64, key: UInt64, values: UnsafeBufferPointer<Int64>) {
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

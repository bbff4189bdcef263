/// Keyed event-time windows of one partition. Lateness is decided per event against the watermark
/// before that event (`watermark`); windows fire when the watermark reaches their end.
protocol WindowOperator: AnyObject {
    /// Adds the batch's events, each judged against its own watermark; sets `batch.late` to the
    /// late ones and `batch.overflows` to those that would overflow a sum of a window they feed
    /// (for sessions: of the merged session). Neither kind changes anything.
    func add(_ batch: EventBatch)
    /// The least end of an open window, or Int64.max: nothing fires before the watermark reaches it.
    var nextFireTime: Int64 { get }
    /// Emits and forgets every window whose end is <= watermark.
    func fire(watermark: Int64, into rows: inout RowBuffer)
    var openWindows: Int { get }
    func encode(into writer: inout BinaryWriter)
    /// Replaces the state with a decoded snapshot.
    func decode(from reader: inout BinaryReader) throws
}

@inline(__always)
func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

/// Tumbling and sliding windows: starts aligned to the epoch every `slide`, each `size` long
/// (tumbling is slide == size). Open windows are grouped by start, few at a time, so firing drops
/// whole buckets.
final class AlignedWindowOperator: WindowOperator {
    private struct Bucket {
        let start: Int64
        var slots: KeySlotTable  // freed when the bucket fires or the state is replaced
    }

    private let size: Int64
    private let slide: Int64
    private var pool: AccumulatorPool
    private var buckets: [Bucket] = []  // ascending by start
    /// Sliding only: no sum of an open window is larger in magnitude. An event feeds several
    /// windows, all or none, so it must be checked against them all before any changes; while
    /// this bound plus the event's largest summand stays within Int64.max, no sum can overflow
    /// and that check is skipped. (Tumbling needs none: `pool.add` refuses in its one window.)
    private var sumBound: UInt64 = 0

    init(size: Int64, slide: Int64, layout: AggregateLayout) {
        self.size = size
        self.slide = slide
        pool = AccumulatorPool(layout: layout)
    }

    deinit {
        for bucket in buckets { bucket.slots.deallocate() }
    }

    var nextFireTime: Int64 { buckets.first.map { $0.start + size } ?? Int64.max }
    var openWindows: Int { buckets.reduce(0) { $0 + $1.slots.count } }

    func add(_ batch: EventBatch) {
        let stride = batch.stride
        let sliding = size > slide
        var late: [Int] = []
        var overflows: [(index: Int, slot: Int, start: Int64)] = []
        var cachedStart = Int64.min, cachedIndex = -1
        // The last aligned start: consecutive events mostly share it, which saves a 64-bit
        // division (the costliest instruction of the loop). Int64.max: none yet.
        var aligned = Int64.max
        var boundRefreshed = false  // at most once per batch
        for r in 0..<batch.count {
            let time = batch.times[r], watermark = batch.watermarks[r], key = batch.keys[r]
            let row = UnsafePointer(batch.values + r * stride)
            if !(time >= aligned && time - aligned < slide) { aligned = floorDiv(time, slide) * slide }
            if sliding {
                let summand = pool.largestSummand(row)
                var (bound, wrapped) = sumBound.addingReportingOverflow(summand)
                if (wrapped || bound > UInt64(Int64.max)) && !boundRefreshed {
                    sumBound = largestOpenSum()
                    boundRefreshed = true
                    (bound, wrapped) = sumBound.addingReportingOverflow(summand)
                }
                if wrapped || bound > UInt64(Int64.max),
                   let overflow = firstOverflow(key: key, time: time, aligned: aligned, watermark: watermark, row: row) {
                    overflows.append((r, overflow.slot, overflow.start))
                    continue
                }
                sumBound = wrapped ? .max : bound
            }
            // Windows containing `time` start in (time - size, lastStart]; walking back, ends
            // only fall, so stop at the first one that is already closed.
            var start = aligned
            var added = false
            while start > time - size, start + size > watermark {
                if start != cachedStart {
                    cachedIndex = bucketIndex(start: start)
                    cachedStart = start
                }
                let slot: Int32
                if let existing = buckets[cachedIndex].slots.slot(for: key) {
                    slot = existing
                } else {
                    slot = pool.allocate()
                    buckets[cachedIndex].slots.insert(key, slot: slot)
                }
                // Only a tumbling window can refuse here: sliding ones were checked above.
                let overflowing = pool.add(slot, row)
                if overflowing != 0 {
                    overflows.append((r, overflowing, start))
                    break
                }
                added = true
                start -= slide
            }
            if !added && overflows.last?.index != r { late.append(r) }
        }
        batch.late = late
        batch.overflows = overflows
    }

    /// The earliest of the event's open windows in which a sum would overflow (and that sum's
    /// slot), found without changing anything.
    private func firstOverflow(key: UInt64, time: Int64, aligned: Int64, watermark: Int64,
                               row: UnsafePointer<Int64>) -> (slot: Int, start: Int64)? {
        var earliest: (slot: Int, start: Int64)? = nil
        var start = aligned
        while start > time - size, start + size > watermark {
            if let b = existingBucket(start: start), let window = buckets[b].slots.slot(for: key),
               let slot = pool.firstOverflow(window, row) {
                earliest = (slot, start)  // walking back: the last one found is the earliest
            }
            start -= slide
        }
        return earliest
    }

    private func existingBucket(start: Int64) -> Int? {
        var i = buckets.count - 1
        while i >= 0, buckets[i].start >= start {
            if buckets[i].start == start { return i }
            i -= 1
        }
        return nil
    }

    private func largestOpenSum() -> UInt64 {
        var largest: UInt64 = 0
        for bucket in buckets {
            bucket.slots.forEach { _, slot in largest = max(largest, pool.largestSum(slot)) }
        }
        return largest
    }

    @inline(__always)
    private func bucketIndex(start: Int64) -> Int {
        var i = buckets.count - 1
        while i >= 0 {
            if buckets[i].start == start { return i }
            if buckets[i].start < start { break }
            i -= 1
        }
        buckets.insert(Bucket(start: start, slots: KeySlotTable(capacity: buckets.last?.slots.count ?? 16)), at: i + 1)
        return i + 1
    }

    func fire(watermark: Int64, into rows: inout RowBuffer) {
        while let first = buckets.first, first.start + size <= watermark {
            first.slots.forEach { key, slot in
                rows.append(start: first.start, key: key, values: pool.values(slot))
                pool.release(slot)
            }
            first.slots.deallocate()
            buckets.removeFirst()
        }
    }

    func encode(into writer: inout BinaryWriter) {
        writer.writeVarUInt(UInt64(buckets.count))
        for bucket in buckets {
            writer.writeVarInt(bucket.start)
            writer.writeVarUInt(UInt64(bucket.slots.count))
            bucket.slots.forEach { key, slot in
                writer.writeVarUInt(key)
                pool.store(slot, to: &writer)
            }
        }
    }

    func decode(from reader: inout BinaryReader) throws {
        pool = AccumulatorPool(layout: pool.layout)
        for bucket in buckets { bucket.slots.deallocate() }
        buckets = []
        let count = try reader.readVarUInt()
        var previous = Int64.min
        for _ in 0..<count {
            let start = try reader.readVarInt()
            guard start > previous || buckets.isEmpty else { throw CodecError.corrupt("window starts out of order") }
            previous = start
            let keys = try reader.readVarUInt()
            guard keys <= UInt64(reader.remaining) else { throw CodecError.corrupt("window key count too large") }
            // Appended first, so that a throw below leaves no table unowned.
            buckets.append(Bucket(start: start, slots: KeySlotTable(capacity: Int(keys))))
            let b = buckets.count - 1
            for _ in 0..<keys {
                let key = try reader.readVarUInt()
                guard buckets[b].slots.slot(for: key) == nil else { throw CodecError.corrupt("key \(key) twice in one window") }
                let slot = pool.allocate()
                try pool.load(slot, from: &reader)
                buckets[b].slots.insert(key, slot: slot)
            }
        }
        sumBound = largestOpenSum()
    }
}

/// Session windows: per key, disjoint sessions that merge when an event overlaps or touches them.
/// A min-heap of (end, key) finds the sessions to fire; entries made stale by a merge are skipped.
final class SessionWindowOperator: WindowOperator {
    private struct Session {
        var start: Int64
        var end: Int64
        var slot: Int32
    }

    private let gap: Int64
    private var pool: AccumulatorPool
    private var sessions: [UInt64: [Session]] = [:]
    private var ends = MinHeap<UInt64>()

    init(gap: Int64, layout: AggregateLayout) {
        self.gap = gap
        pool = AccumulatorPool(layout: layout)
    }

    var nextFireTime: Int64 { ends.top?.end ?? Int64.max }
    var openWindows: Int { sessions.reduce(0) { $0 + $1.value.count } }

    private enum Outcome {
        case added, late
        case overflow(slot: Int, start: Int64)
    }

    func add(_ batch: EventBatch) {
        var late: [Int] = []
        var overflows: [(index: Int, slot: Int, start: Int64)] = []
        for r in 0..<batch.count {
            switch add(key: batch.keys[r], time: batch.times[r], values: UnsafePointer(batch.values + r * batch.stride),
                       watermark: batch.watermarks[r]) {
            case .added: break
            case .late: late.append(r)
            case .overflow(let slot, let start): overflows.append((r, slot, start))
            }
        }
        batch.late = late
        batch.overflows = overflows
    }

    private func add(key: UInt64, time: Int64, values: UnsafePointer<Int64>, watermark: Int64) -> Outcome {
        var start = time, end = time + gap
        let existing = sessions[key] ?? []
        var merged: [Int] = []
        for (i, s) in existing.enumerated() where s.end > watermark && time <= s.end && time + gap >= s.start {
            merged.append(i)
            start = min(start, s.start)
            end = max(end, s.end)
        }
        if end <= watermark { return .late }
        // A new session holds the event alone, which fits; a merged one is checked whole.
        if !merged.isEmpty, let slot = pool.firstOverflow(merging: merged.lazy.map { existing[$0].slot }, values) {
            return .overflow(slot: slot, start: start)
        }

        var list = existing
        let slot: Int32
        if let first = merged.first {
            slot = list[first].slot
            for i in merged.dropFirst() { pool.merge(list[i].slot, into: slot); pool.release(list[i].slot) }
            for i in merged.dropFirst().reversed() { list.remove(at: i) }
            let changedEnd = list[first].end != end
            list[first].start = start
            list[first].end = end
            if changedEnd { ends.push(end: end, key: key) }
        } else {
            slot = pool.allocate()
            list.append(Session(start: start, end: end, slot: slot))
            ends.push(end: end, key: key)
        }
        pool.addChecked(slot, values)
        sessions[key] = list
        return .added
    }

    func fire(watermark: Int64, into rows: inout RowBuffer) {
        while let top = ends.top, top.end <= watermark {
            ends.pop()
            guard var list = sessions[top.key], let i = list.firstIndex(where: { $0.end == top.end }) else { continue }
            let session = list.remove(at: i)
            rows.append(start: session.start, key: top.key, values: pool.values(session.slot))
            pool.release(session.slot)
            sessions[top.key] = list.isEmpty ? nil : list
        }
    }

    func encode(into writer: inout BinaryWriter) {
        writer.writeVarUInt(UInt64(sessions.count))
        for (key, list) in sessions {
            writer.writeVarUInt(key)
            writer.writeVarUInt(UInt64(list.count))
            for s in list {
                writer.writeVarInt(s.start)
                writer.writeVarInt(s.end)
                pool.store(s.slot, to: &writer)
            }
        }
    }

    func decode(from reader: inout BinaryReader) throws {
        pool = AccumulatorPool(layout: pool.layout)
        sessions = [:]
        ends = MinHeap<UInt64>()
        let keys = try reader.readVarUInt()
        guard keys <= UInt64(reader.remaining) else { throw CodecError.corrupt("session key count too large") }
        for _ in 0..<keys {
            let key = try reader.readVarUInt()
            let count = try reader.readVarUInt()
            guard count > 0, count <= UInt64(reader.remaining) else { throw CodecError.corrupt("bad session count") }
            var list: [Session] = []
            for _ in 0..<count {
                let start = try reader.readVarInt(), end = try reader.readVarInt()
                guard start < end else { throw CodecError.corrupt("session ends before it starts") }
                let slot = pool.allocate()
                try pool.load(slot, from: &reader)
                list.append(Session(start: start, end: end, slot: slot))
                ends.push(end: end, key: key)
            }
            sessions[key] = list
        }
    }
}

/// A binary min-heap of (end, key): the session ends of the integer and the records engines.
struct MinHeap<Key> {
    private(set) var items: [(end: Int64, key: Key)] = []

    var top: (end: Int64, key: Key)? { items.first }

    mutating func push(end: Int64, key: Key) {
        items.append((end, key))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent].end <= items[i].end { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count, items[l].end < items[m].end { m = l }
            if r < items.count, items[r].end < items[m].end { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
    }
}

/// Keyed event-time windows of one partition. Lateness is decided per event against the watermark
/// before that event (`watermark`); windows fire when the watermark reaches their end.
protocol WindowOperator: AnyObject {
    /// Adds the batch's events, each judged against its own watermark; appends the indices of the
    /// late ones (which change nothing) to `batch.late`.
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
        var late: [Int] = []
        var cachedStart = Int64.min, cachedIndex = -1
        // The last aligned start: consecutive events mostly share it, which saves a 64-bit
        // division (the costliest instruction of the loop). Int64.max: none yet.
        var aligned = Int64.max
        do {
            for r in 0..<batch.count {
                let time = batch.times[r], watermark = batch.watermarks[r], key = batch.keys[r]
                let row = UnsafePointer(batch.values + r * stride)
                if !(time >= aligned && time - aligned < slide) { aligned = floorDiv(time, slide) * slide }
                // Windows containing `time` start in (time - size, lastStart]; walking back, ends
                // only fall, so stop at the first one that is already closed.
                var start = aligned
                var added = false
                while start > time - size, start + size > watermark {
                    if start != cachedStart {
                        cachedIndex = bucketIndex(start: start)
                        cachedStart = start
                    }
                    if let slot = buckets[cachedIndex].slots.slot(for: key) {
                        pool.add(slot, row)
                    } else {
                        let slot = pool.allocate()
                        buckets[cachedIndex].slots.insert(key, slot: slot)
                        pool.add(slot, row)
                    }
                    added = true
                    start -= slide
                }
                if !added { late.append(r) }
            }
        }
        batch.late = late
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
    private var ends = MinHeap()

    init(gap: Int64, layout: AggregateLayout) {
        self.gap = gap
        pool = AccumulatorPool(layout: layout)
    }

    var nextFireTime: Int64 { ends.top?.end ?? Int64.max }
    var openWindows: Int { sessions.reduce(0) { $0 + $1.value.count } }

    func add(_ batch: EventBatch) {
        var late: [Int] = []
        for r in 0..<batch.count where !add(key: batch.keys[r], time: batch.times[r],
                                            values: UnsafePointer(batch.values + r * batch.stride),
                                            watermark: batch.watermarks[r]) {
            late.append(r)
        }
        batch.late = late
    }

    private func add(key: UInt64, time: Int64, values: UnsafePointer<Int64>, watermark: Int64) -> Bool {
        var start = time, end = time + gap
        let existing = sessions[key] ?? []
        var merged: [Int] = []
        for (i, s) in existing.enumerated() where s.end > watermark && time <= s.end && time + gap >= s.start {
            merged.append(i)
            start = min(start, s.start)
            end = max(end, s.end)
        }
        if end <= watermark { return false }

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
        pool.add(slot, values)
        sessions[key] = list
        return true
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
        ends = MinHeap()
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

/// A binary min-heap of (end, key).
struct MinHeap {
    private(set) var items: [(end: Int64, key: UInt64)] = []

    var top: (end: Int64, key: UInt64)? { items.first }

    mutating func push(end: Int64, key: UInt64) {
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

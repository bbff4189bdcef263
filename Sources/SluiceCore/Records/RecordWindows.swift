// Keyed event-time windows over typed records: tumbling and sliding (aligned to the epoch) and
// sessions, with the same lateness and overflow rules as the integer operator (WindowOperator.swift):
// an event is judged against the watermark before it, a window fires when the watermark reaches
// its end, and an event that would overflow a sum of any window it feeds changes nothing.

/// A record's key: the values of its key fields (several for a composite key).
struct RecordKey: Hashable, Sendable {
    var parts: [Value]
}

protocol RecordWindowing: AnyObject {
    /// True when no window that would take the event is still open at `watermark`.
    func isLate(key: RecordKey, time: Int64, watermark: Int64) -> Bool
    /// Adds an event that is not late; returns the aggregate and window start of the first sum it
    /// would overflow instead (and then changes nothing).
    func add(key: RecordKey, time: Int64, offset: Int64, values: [Value], watermark: Int64) -> (aggregate: Int, start: Int64)?
    /// The least end of an open window, or Int64.max.
    var nextFireTime: Int64 { get }
    /// Emits and forgets every window whose end is <= watermark.
    func fire(watermark: Int64, into rows: inout [RecordRow])
    var openWindows: Int { get }
    /// No event earlier than this can still join an open window or open one at `watermark` (dedupe
    /// state older than it can never match again).
    func earliestLiveTime(watermark: Int64) -> Int128
    func encode(into writer: inout BinaryWriter)
    func decode(from reader: inout BinaryReader) throws
}

/// Tumbling (slide == size) and sliding windows, grouped by start.
final class AlignedRecordWindows: RecordWindowing {
    private let size: Int64
    private let slide: Int64
    private let plans: [RecordAggregatePlan]
    private let empty: WindowAggregates
    private var buckets: [(start: Int64, windows: [RecordKey: WindowAggregates])] = []  // ascending by start

    init(size: Int64, slide: Int64, plans: [RecordAggregatePlan]) {
        self.size = size
        self.slide = slide
        self.plans = plans
        empty = WindowAggregates(plans: plans)
    }

    var nextFireTime: Int64 { buckets.first.map { $0.start + size } ?? Int64.max }
    var openWindows: Int { buckets.reduce(0) { $0 + $1.windows.count } }

    func isLate(key: RecordKey, time: Int64, watermark: Int64) -> Bool {
        // The latest window holding `time` ends last: late when even it has closed.
        floorDiv(time, slide) * slide + size <= watermark
    }

    func add(key: RecordKey, time: Int64, offset: Int64, values: [Value], watermark: Int64) -> (aggregate: Int, start: Int64)? {
        if size == slide { return addTumbling(key: key, time: time, offset: offset, values: values) }
        var starts: [Int64] = []
        var start = floorDiv(time, slide) * slide
        while start > time - size, start + size > watermark {
            starts.append(start)
            start -= slide
        }
        // All or none: every window is checked (earliest first) before any changes.
        for s in starts.reversed() {
            let window = bucket(s).flatMap { buckets[$0].windows[key] } ?? empty
            if let a = window.overflow(adding: values, plans: plans) { return (a, s) }
        }
        for s in starts {
            let b = bucketIndex(s)
            buckets[b].windows[key, default: empty].add(values, time: time, offset: offset, plans: plans)
        }
        return nil
    }

    /// Tumbling: one window, found once and changed in place. (The caller checked that the event
    /// is not late, so its window is open.)
    private func addTumbling(key: RecordKey, time: Int64, offset: Int64, values: [Value]) -> (aggregate: Int, start: Int64)? {
        let start = floorDiv(time, slide) * slide
        let b = bucketIndex(start)
        if let w = buckets[b].windows.index(forKey: key) {
            if let a = buckets[b].windows.values[w].overflow(adding: values, plans: plans) { return (a, start) }
            buckets[b].windows.values[w].add(values, time: time, offset: offset, plans: plans)
        } else {
            var window = empty
            if let a = window.overflow(adding: values, plans: plans) {
                if buckets[b].windows.isEmpty { buckets.remove(at: b) }
                return (a, start)
            }
            window.add(values, time: time, offset: offset, plans: plans)
            buckets[b].windows[key] = window
        }
        return nil
    }

    private func bucket(_ start: Int64) -> Int? {
        var i = buckets.count - 1
        while i >= 0, buckets[i].start >= start {
            if buckets[i].start == start { return i }
            i -= 1
        }
        return nil
    }

    private func bucketIndex(_ start: Int64) -> Int {
        var i = buckets.count - 1
        while i >= 0 {
            if buckets[i].start == start { return i }
            if buckets[i].start < start { break }
            i -= 1
        }
        buckets.insert((start, [:]), at: i + 1)
        return i + 1
    }

    func fire(watermark: Int64, into rows: inout [RecordRow]) {
        while let first = buckets.first, first.start + size <= watermark {
            for (key, window) in first.windows {
                rows.append(RecordRow(windowStart: first.start, values: key.parts + window.results(plans: plans)))
            }
            buckets.removeFirst()
        }
    }

    func earliestLiveTime(watermark: Int64) -> Int128 { Int128(watermark) - Int128(size) }

    func encode(into writer: inout BinaryWriter) {
        writer.writeVarUInt(UInt64(buckets.count))
        for bucket in buckets {
            writer.writeVarInt(bucket.start)
            writer.writeVarUInt(UInt64(bucket.windows.count))
            for (key, window) in bucket.windows {
                RecordStateCodec.write(key, to: &writer)
                RecordStateCodec.write(window, to: &writer)
            }
        }
    }

    func decode(from reader: inout BinaryReader) throws {
        buckets = []
        let count = try reader.readVarUInt()
        guard count <= UInt64(reader.remaining) else { throw CodecError.corrupt("window count too large") }
        for _ in 0..<count {
            let start = try reader.readVarInt()
            guard buckets.last.map({ $0.start < start }) ?? true else { throw CodecError.corrupt("window starts out of order") }
            let keys = try reader.readVarUInt()
            guard keys <= UInt64(reader.remaining) else { throw CodecError.corrupt("window key count too large") }
            var windows: [RecordKey: WindowAggregates] = [:]
            for _ in 0..<keys {
                let key = try RecordStateCodec.readKey(from: &reader)
                guard windows[key] == nil else { throw CodecError.corrupt("a key twice in one window") }
                windows[key] = try RecordStateCodec.readWindow(from: &reader, plans: plans)
            }
            buckets.append((start, windows))
        }
    }
}

/// Session windows: per key, disjoint sessions `[first, last + gap)` that merge when an event
/// overlaps or touches them. A min-heap of ends finds what to fire; entries a merge made stale
/// are skipped.
final class SessionRecordWindows: RecordWindowing {
    struct Session: Equatable {
        var start: Int64
        var end: Int64
        var aggregates: WindowAggregates
    }

    private let gap: Int64
    private let plans: [RecordAggregatePlan]
    private let empty: WindowAggregates
    private var sessions: [RecordKey: [Session]] = [:]
    private var ends = MinHeap<RecordKey>()

    init(gap: Int64, plans: [RecordAggregatePlan]) {
        self.gap = gap
        self.plans = plans
        empty = WindowAggregates(plans: plans)
    }

    var nextFireTime: Int64 { ends.top?.end ?? Int64.max }
    var openWindows: Int { sessions.reduce(0) { $0 + $1.value.count } }

    /// The sessions an event at `time` joins, and the bounds of the session they make together.
    private func merge(_ list: [Session], time: Int64, watermark: Int64) -> (indices: [Int], start: Int64, end: Int64) {
        var start = time, end = time + gap
        var indices: [Int] = []
        for (i, s) in list.enumerated() where s.end > watermark && time <= s.end && time + gap >= s.start {
            indices.append(i)
            start = min(start, s.start)
            end = max(end, s.end)
        }
        return (indices, start, end)
    }

    func isLate(key: RecordKey, time: Int64, watermark: Int64) -> Bool {
        merge(sessions[key] ?? [], time: time, watermark: watermark).end <= watermark
    }

    func add(key: RecordKey, time: Int64, offset: Int64, values: [Value], watermark: Int64) -> (aggregate: Int, start: Int64)? {
        var list = sessions[key] ?? []
        let (indices, start, end) = merge(list, time: time, watermark: watermark)
        if let a = WindowAggregates.overflow(merging: indices.map { list[$0].aggregates }, adding: values, plans: plans) {
            return (a, start)
        }
        var merged = indices.first.map { list[$0].aggregates } ?? empty
        for i in indices.dropFirst() { merged.merge(list[i].aggregates, plans: plans) }
        merged.add(values, time: time, offset: offset, plans: plans)
        let session = Session(start: start, end: end, aggregates: merged)
        let changedEnd = indices.first.map { list[$0].end != end } ?? true
        if let first = indices.first {
            list[first] = session
            for i in indices.dropFirst().reversed() { list.remove(at: i) }
        } else {
            list.append(session)
        }
        if changedEnd { ends.push(end: end, key: key) }
        sessions[key] = list
        return nil
    }

    func fire(watermark: Int64, into rows: inout [RecordRow]) {
        while let top = ends.top, top.end <= watermark {
            ends.pop()
            guard var list = sessions[top.key], let i = list.firstIndex(where: { $0.end == top.end }) else { continue }
            let session = list.remove(at: i)
            rows.append(RecordRow(windowStart: session.start, values: top.key.parts + session.aggregates.results(plans: plans)))
            sessions[top.key] = list.isEmpty ? nil : list
        }
    }

    func earliestLiveTime(watermark: Int64) -> Int128 {
        // A new event opens a session if t + gap > W, or joins an open one if t >= its start - gap.
        var earliest = Int128(watermark) - Int128(gap)
        for list in sessions.values { for s in list where s.end > watermark { earliest = min(earliest, Int128(s.start) - Int128(gap)) } }
        return earliest
    }

    func encode(into writer: inout BinaryWriter) {
        writer.writeVarUInt(UInt64(sessions.count))
        for (key, list) in sessions {
            RecordStateCodec.write(key, to: &writer)
            writer.writeVarUInt(UInt64(list.count))
            for s in list {
                writer.writeVarInt(s.start)
                writer.writeVarInt(s.end)
                RecordStateCodec.write(s.aggregates, to: &writer)
            }
        }
    }

    func decode(from reader: inout BinaryReader) throws {
        sessions = [:]
        ends = MinHeap<RecordKey>()
        let keys = try reader.readVarUInt()
        guard keys <= UInt64(reader.remaining) else { throw CodecError.corrupt("session key count too large") }
        for _ in 0..<keys {
            let key = try RecordStateCodec.readKey(from: &reader)
            let count = try reader.readVarUInt()
            guard count > 0, count <= UInt64(reader.remaining) else { throw CodecError.corrupt("bad session count") }
            var list: [Session] = []
            for _ in 0..<count {
                let start = try reader.readVarInt(), end = try reader.readVarInt()
                guard start < end else { throw CodecError.corrupt("session ends before it starts") }
                list.append(Session(start: start, end: end, aggregates: try RecordStateCodec.readWindow(from: &reader, plans: plans)))
                ends.push(end: end, key: key)
            }
            sessions[key] = list
        }
    }
}

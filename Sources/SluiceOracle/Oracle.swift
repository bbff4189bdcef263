// The independent oracle (shared/WORKLOAD.md, "Output and the oracle"): recomputes a windowed job
// from its input in the plainest way, one pass per partition, firing after every event, so that
// the engine can be checked against it row by row. It shares no windowing code with the engine:
// from SluiceCore it uses only the plain model types.
//
// Times and window bounds are computed in Int128 so that no arithmetic can overflow or trap,
// whatever the event times; the watermark's minus and plus infinity are Int128.min and Int128.max.

import Foundation
import SluiceCore
import SluiceWorkload

public enum Oracle {
    /// The result of one partition's text.
    public static func run(pipeline: Pipeline, partition: Int, text: [UInt8]) -> OracleResult {
        var run = PartitionRun(pipeline: pipeline, partition: partition)
        Lines.forEach(in: text) { offset, line in
            run.process(text: text, line: line, offset: offset)
        }
        run.finish()
        var result = run.result
        result.sort()
        return result
    }

    /// The result of every partition of `input`, merged.
    public static func run(pipeline: Pipeline, input: WorkloadInput) throws -> OracleResult {
        var merged = OracleResult()
        for partition in 0..<(try input.partitionCount()) {
            let text = try input.readPartition(partition)
            let one = run(pipeline: pipeline, partition: partition, text: text)
            merged.rows += one.rows
            merged.late += one.late
            merged.deadLetters += one.deadLetters
        }
        merged.sort()
        return merged
    }
}

// MARK: - Aggregates

/// The running aggregates of one window: the event count, and per aggregate spec one value
/// (the count, the wrapping sum, the min or the max of its field; for avg, the wrapping sum).
struct Accumulator {
    var count: Int64 = 0
    var values: [Int64]

    init(aggregates: [AggregateSpec]) {
        values = aggregates.map { spec in
            switch spec.function {
            case .count, .sum, .avg: return 0
            case .min: return Int64.max
            case .max: return Int64.min
            }
        }
    }

    /// Adds one event; `fieldValues[i]` is the value of aggregate i's field (0 for count).
    mutating func add(_ fieldValues: [Int64], aggregates: [AggregateSpec]) {
        count += 1
        for i in aggregates.indices {
            switch aggregates[i].function {
            case .count: values[i] += 1
            case .sum, .avg: values[i] = values[i] &+ fieldValues[i]
            case .min: values[i] = Swift.min(values[i], fieldValues[i])
            case .max: values[i] = Swift.max(values[i], fieldValues[i])
            }
        }
    }

    /// The aggregates of the union of two windows' events.
    func merged(with other: Accumulator, aggregates: [AggregateSpec]) -> Accumulator {
        var result = self
        result.count += other.count
        for i in aggregates.indices {
            switch aggregates[i].function {
            case .count: result.values[i] += other.values[i]
            case .sum, .avg: result.values[i] = values[i] &+ other.values[i]
            case .min: result.values[i] = Swift.min(values[i], other.values[i])
            case .max: result.values[i] = Swift.max(values[i], other.values[i])
            }
        }
        return result
    }

    /// `start,key,agg1,agg2,…`
    func row(start: Int128, key: UInt64, aggregates: [AggregateSpec]) -> String {
        var columns = ["\(start)", "\(key)"]
        for i in aggregates.indices {
            switch aggregates[i].function {
            case .count, .sum, .min, .max: columns.append("\(values[i])")
            case .avg: columns.append("\(Double(values[i]) / Double(count))")
            }
        }
        return columns.joined(separator: ",")
    }
}

// MARK: - One partition

/// The state of one partition while its lines are read in order.
struct PartitionRun {
    let pipeline: Pipeline
    let partition: Int
    let parser: LineParser
    let keyIndex: Int
    let timeIndex: Int
    /// For each aggregate, the index of its field in the schema (nil for count).
    let aggregateFieldIndices: [Int?]

    /// The watermark: Int128.min before the first event, Int128.max after the end of input.
    var watermark: Int128 = .min
    var result = OracleResult()

    // Tumbling and sliding windows: open windows by start, then by key. All windows have the same
    // size, so the earliest start has the earliest end.
    var openWindows: [Int128: [UInt64: Accumulator]] = [:]

    // Session windows: each key's open sessions (disjoint, not touching), and a queue of
    // (end, key) entries to find cheaply the sessions that are due. An entry whose session has
    // since been merged away is stale and is skipped when it comes out of the queue.
    var sessions: [UInt64: [Session]] = [:]
    var sessionEnds = MinQueue()

    struct Session {
        var start: Int128
        var end: Int128
        var accumulator: Accumulator
    }

    init(pipeline: Pipeline, partition: Int) {
        self.pipeline = pipeline
        self.partition = partition
        parser = LineParser(schema: pipeline.schema)
        guard let key = pipeline.schema.index(of: pipeline.keyField) else {
            preconditionFailure("oracle: key field '\(pipeline.keyField)' is not in the schema")
        }
        guard let time = pipeline.schema.index(of: pipeline.timeField) else {
            preconditionFailure("oracle: time field '\(pipeline.timeField)' is not in the schema")
        }
        keyIndex = key
        timeIndex = time
        aggregateFieldIndices = pipeline.aggregates.map { spec in
            guard let field = spec.field else { return nil }
            guard let index = pipeline.schema.index(of: field) else {
                preconditionFailure("oracle: aggregate field '\(field)' is not in the schema")
            }
            return index
        }
        switch pipeline.window {
        case .tumbling(let size):
            precondition(size > 0, "oracle: window size must be positive")
        case .sliding(let size, let slide):
            precondition(size > 0 && slide > 0, "oracle: window size and slide must be positive")
        case .session(let gap):
            precondition(gap >= 0, "oracle: session gap must not be negative")
        }
    }

    mutating func process(text: [UInt8], line: Range<Int>, offset: Int) {
        switch parser.parse(text, line) {
        case .malformed(let reason):
            result.deadLetters.append(DeadLetter(partition: partition, offset: offset, reason: reason))
        case .event(let fields):
            let key = UInt64(bitPattern: fields[keyIndex])
            let time = Int128(fields[timeIndex])
            let aggregateValues = aggregateFieldIndices.map { index in index.map { fields[$0] } ?? 0 }
            let watermarkBefore = watermark

            let accepted: Bool
            switch pipeline.window {
            case .tumbling(let size):
                accepted = addToWindows(key: key, time: time, values: aggregateValues,
                                        size: Int128(size), slide: Int128(size), watermarkBefore: watermarkBefore)
            case .sliding(let size, let slide):
                accepted = addToWindows(key: key, time: time, values: aggregateValues,
                                        size: Int128(size), slide: Int128(slide), watermarkBefore: watermarkBefore)
            case .session(let gap):
                accepted = addToSessions(key: key, time: time, values: aggregateValues,
                                         gap: Int128(gap), watermarkBefore: watermarkBefore)
            }
            if !accepted {
                result.late.append(PartitionOffset(partition: partition, offset: offset))
            }

            watermark = max(watermark, time - Int128(pipeline.watermark.maxOutOfOrdernessMs))
            fireDue()
        }
    }

    /// End of input: the watermark becomes plus infinity and everything still open fires.
    mutating func finish() {
        watermark = .max
        fireDue()
    }

    // MARK: Tumbling and sliding

    /// Adds the event to each of its windows (starts that are multiples of `slide`, with
    /// start <= t < start + size) whose end is after the watermark. False if it is in none: late.
    /// A tumbling window is a sliding window whose slide is its size.
    mutating func addToWindows(key: UInt64, time: Int128, values: [Int64], size: Int128, slide: Int128,
                               watermarkBefore: Int128) -> Bool {
        var added = false
        var start = floorDivide(time, by: slide) * slide  // the latest start <= t
        while start + size > time {
            if start + size > watermarkBefore {
                var window = openWindows[start, default: [:]][key] ?? Accumulator(aggregates: pipeline.aggregates)
                window.add(values, aggregates: pipeline.aggregates)
                openWindows[start, default: [:]][key] = window
                added = true
            }
            start -= slide
        }
        return added
    }

    // MARK: Sessions

    /// Merges [t, t + gap) with every open session of the key that it overlaps or touches. False
    /// (late, nothing changed) if the merged session's end is not after the watermark.
    mutating func addToSessions(key: UInt64, time: Int128, values: [Int64], gap: Int128,
                                watermarkBefore: Int128) -> Bool {
        var merged = Session(start: time, end: time + gap, accumulator: Accumulator(aggregates: pipeline.aggregates))
        merged.accumulator.add(values, aggregates: pipeline.aggregates)
        var untouched: [Session] = []
        for other in sessions[key] ?? [] {
            if time <= other.end && time + gap >= other.start {
                merged.start = min(merged.start, other.start)
                merged.end = max(merged.end, other.end)
                merged.accumulator = merged.accumulator.merged(with: other.accumulator, aggregates: pipeline.aggregates)
            } else {
                untouched.append(other)
            }
        }
        if merged.end <= watermarkBefore { return false }
        sessions[key] = untouched + [merged]
        sessionEnds.push(end: merged.end, key: key)
        return true
    }

    // MARK: Firing

    /// Emits and removes every open window or session whose end is <= the watermark.
    mutating func fireDue() {
        switch pipeline.window {
        case .tumbling(let size):
            fireWindows(size: Int128(size))
        case .sliding(let size, _):
            fireWindows(size: Int128(size))
        case .session:
            fireSessions()
        }
    }

    mutating func fireWindows(size: Int128) {
        // The set of distinct open starts is small (a few windows per key are open at once), so
        // looking at all of them costs little; skip even that while the earliest is not due.
        guard let earliest = openWindows.keys.min(), earliest + size <= watermark else { return }
        let dueStarts = openWindows.keys.filter { $0 + size <= watermark }
        for start in dueStarts {
            for (key, window) in openWindows[start]! {
                result.rows.append(window.row(start: start, key: key, aggregates: pipeline.aggregates))
            }
            openWindows[start] = nil
        }
    }

    mutating func fireSessions() {
        while let (end, key) = sessionEnds.peek(), end <= watermark {
            sessionEnds.pop()
            guard var open = sessions[key], let i = open.firstIndex(where: { $0.end == end }) else {
                continue  // stale: that session was merged into a later one
            }
            let session = open.remove(at: i)
            result.rows.append(session.accumulator.row(start: session.start, key: key, aggregates: pipeline.aggregates))
            sessions[key] = open.isEmpty ? nil : open
        }
    }
}

/// Floor division (rounds toward minus infinity), so that windows of negative times are aligned
/// like the others.
func floorDivide(_ a: Int128, by b: Int128) -> Int128 {
    let quotient = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
}

/// A binary min-heap of (end, key), ordered by end.
struct MinQueue {
    private var items: [(end: Int128, key: UInt64)] = []

    var count: Int { items.count }

    func peek() -> (end: Int128, key: UInt64)? { items.first }

    mutating func push(end: Int128, key: UInt64) {
        items.append((end, key))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if items[parent].end <= items[child].end { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && items[left].end < items[smallest].end { smallest = left }
            if right < items.count && items[right].end < items[smallest].end { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
    }
}

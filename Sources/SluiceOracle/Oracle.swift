// The independent oracle (docs/WORKLOAD.md, "Output and the oracle"): recomputes a windowed job
// from its input in the plainest way, one pass per partition, firing after every event, so that
// the engine can be checked against it row by row. It shares no windowing code with the engine:
// from SluiceCore it uses only the plain model types.
//
// Times and window bounds are computed in Int128 so that no arithmetic can overflow or trap,
// whatever the event times; the watermark's minus and plus infinity are Int128.min and Int128.max.
// Sums are exact too (Int128, see `Accumulator`): an event that would take a sum of a window it
// feeds outside Int64 is a dead letter (docs/DESIGN.md, "Overflow").

import Foundation
import SluiceCore
import SluiceWorkload
import Synchronization

public enum Oracle {
    /// Event times beyond ±2^62 ms (about 146 million years) make a line malformed.
    static let timeLimit: Int64 = 1 << 62

    /// The result of one partition's text. `partitions` is the input's partition count, which
    /// records jobs need for the partition check (integer jobs ignore it); with the default of 1,
    /// call with partition 0 only.
    public static func run(pipeline: Pipeline, partition: Int, text: [UInt8], partitions: Int = 1) -> OracleResult {
        if !pipeline.isIntegerCSV {
            return runRecords(pipeline: pipeline, partition: partition, partitions: partitions, text: text)
        }
        var run = PartitionRun(pipeline: pipeline, partition: partition)
        text.withUnsafeBufferPointer { text in
            Lines.forEach(in: text) { offset, line in
                run.process(text: text, line: line, offset: offset)
            }
        }
        run.finish()
        var result = run.result
        result.sort()
        return result
    }

    /// The result of every partition of `input`, merged. Partitions are independent, so they are
    /// computed (and sorted) side by side on the machine's cores; the merged lists are sorted
    /// again (cheaply: they are sorted runs), so the result does not depend on which finishes first.
    public static func run(pipeline: Pipeline, input: WorkloadInput) throws -> OracleResult {
        let partitionCount = try input.partitionCount()
        let outcomes = Mutex<[Result<OracleResult, any Error>?]>(Array(repeating: nil, count: partitionCount))
        DispatchQueue.concurrentPerform(iterations: partitionCount) { partition in
            let outcome = Result {
                run(pipeline: pipeline, partition: partition, text: try input.readPartition(partition), partitions: partitionCount)
            }
            outcomes.withLock { $0[partition] = outcome }
        }
        var merged = OracleResult()
        for outcome in outcomes.withLock({ $0 }) {
            let one = try outcome!.get()
            merged.rows += one.rows
            merged.late += one.late
            merged.deadLetters += one.deadLetters
            merged.records += one.records
            merged.duplicates += one.duplicates
            merged.filtered += one.filtered
            merged.keyColumns = one.keyColumns
        }
        merged.sort()
        return merged
    }
}

// MARK: - Aggregates

/// One aggregate of the job: its function, the index of its field in the schema (its own
/// index is unused for count), and its output column (`sum_price`).
struct AggregatePlan {
    var function: AggregateFunction
    var fieldIndex: Int
    var column: String
}

/// The running aggregates of one window: the event count, and per aggregate one value (the
/// count, the exact sum, the min or the max of its field; for avg, the exact sum).
///
/// Values are Int128, which is exact here: the overflow rule keeps every stored sum within Int64,
/// and a candidate sum adds to it one Int64 (an event) or a few stored sums (a session merge), far
/// from 2^127. (A BigInt would be exact without that argument, but none is at hand in Swift's
/// standard library, and Int128 is.)
struct Accumulator {
    static let integerOnly = "oracle: this oracle recomputes integer jobs (Pipeline.isIntegerCSV); records have their own"
    var count: Int64 = 0
    var values: [Int128]

    init(_ plans: [AggregatePlan]) {
        values = Array(repeating: 0, count: plans.count)
        for i in 0..<plans.count {
            switch plans[i].function {
            case .count, .sum, .avg: values[i] = 0
            case .min: values[i] = Int128(Int64.max)
            case .max: values[i] = Int128(Int64.min)
            case .countDistinct, .first, .last: preconditionFailure(Accumulator.integerOnly)
            }
        }
    }

    /// Adds one event, given as the values of all its schema fields.
    mutating func add(_ fields: [Int64], _ plans: [AggregatePlan]) {
        count += 1
        for i in 0..<plans.count {
            let value = Int128(fields[plans[i].fieldIndex])
            switch plans[i].function {
            case .count: values[i] += 1
            case .sum, .avg: values[i] += value
            case .min: values[i] = Swift.min(values[i], value)
            case .max: values[i] = Swift.max(values[i], value)
            case .countDistinct, .first, .last: preconditionFailure(Accumulator.integerOnly)
            }
        }
    }

    /// The aggregates of the union of two windows' events.
    func merged(with other: Accumulator, _ plans: [AggregatePlan]) -> Accumulator {
        var result = self
        result.count += other.count
        for i in 0..<plans.count {
            switch plans[i].function {
            case .count, .sum, .avg: result.values[i] = values[i] + other.values[i]
            case .min: result.values[i] = Swift.min(values[i], other.values[i])
            case .max: result.values[i] = Swift.max(values[i], other.values[i])
            case .countDistinct, .first, .last: preconditionFailure(Accumulator.integerOnly)
            }
        }
        return result
    }

    /// The output column of the first sum or avg (in spec order) that does not fit an Int64, once
    /// the event `fields` (if any) is added.
    func firstOverflow(adding fields: [Int64]? = nil, _ plans: [AggregatePlan]) -> String? {
        for i in 0..<plans.count where plans[i].function == .sum || plans[i].function == .avg {
            let sum = values[i] + (fields.map { Int128($0[plans[i].fieldIndex]) } ?? 0)
            if sum < Int128(Int64.min) || sum > Int128(Int64.max) { return plans[i].column }
        }
        return nil
    }

    /// `start,key,agg1,agg2,…`
    func row(start: Int128, key: UInt64, _ plans: [AggregatePlan]) -> String {
        var row = "\(start),\(key)"
        for i in 0..<plans.count {
            switch plans[i].function {
            case .count, .sum, .min, .max: row += ",\(values[i])"
            case .avg:
                // Through Int64, as a result column holds it; a value outside (which the overflow
                // rule prevents) is printed exact, so it can never match a wrapped one.
                let sum = Int64(exactly: values[i]).map { "\(Double($0) / Double(count))" } ?? "\(values[i])/\(count)"
                row += ",\(sum)"
            case .countDistinct, .first, .last: preconditionFailure(Accumulator.integerOnly)
            }
        }
        return row
    }
}

// MARK: - One partition

/// The state of one partition while its lines are read in order.
struct PartitionRun {
    enum Windowing {
        /// Tumbling is sliding with slide == size.
        case windows(size: Int128, slide: Int128)
        case sessions(gap: Int128)
    }

    let partition: Int
    let parser: LineParser
    let keyIndex: Int
    let timeIndex: Int
    let plans: [AggregatePlan]
    let windowing: Windowing
    let maxOutOfOrderness: Int128

    /// The watermark: Int128.min before the first event, Int128.max after the end of input.
    var watermark: Int128 = .min
    var result = OracleResult()

    // Tumbling and sliding windows: open windows by start, then by key, and the least end of an
    // open window (Int128.max if none), so that nothing is looked at until something is due.
    var openWindows: [Int128: [UInt64: Accumulator]] = [:]
    var earliestOpenEnd: Int128 = .max

    // Session windows: each key's open sessions (disjoint, not touching), and a queue to find
    // cheaply the keys that have a session due. Invariant: every key with open sessions has its
    // entry (queuedEnd[key], key) in the queue, and queuedEnd[key] <= the least end of its
    // sessions; so when W reaches a session's end, its key's entry has come out of the queue.
    // (Merging only raises ends, so the entry stays a lower bound; only a new separate session
    // can lower the key's least end, and then the key is queued again with the lower end.)
    // Queue entries whose end is no longer the key's queuedEnd are stale and skipped.
    var sessions: [UInt64: [Session]] = [:]
    var sessionQueue = MinQueue()
    var queuedEnd: [UInt64: Int128] = [:]

    struct Session {
        var start: Int128
        var end: Int128
        var accumulator: Accumulator
    }

    init(pipeline: Pipeline, partition: Int) {
        self.partition = partition
        let schema = pipeline.schema
        parser = LineParser(schema: schema)
        guard let key = schema.index(of: pipeline.keyField) else {
            preconditionFailure("oracle: key field '\(pipeline.keyField)' is not in the schema")
        }
        guard let time = schema.index(of: pipeline.timeField) else {
            preconditionFailure("oracle: time field '\(pipeline.timeField)' is not in the schema")
        }
        keyIndex = key
        timeIndex = time
        plans = pipeline.aggregates.map { spec in
            guard let field = spec.field else {
                return AggregatePlan(function: spec.function, fieldIndex: 0, column: spec.columnName)
            }
            guard let index = schema.index(of: field) else {
                preconditionFailure("oracle: aggregate field '\(field)' is not in the schema")
            }
            return AggregatePlan(function: spec.function, fieldIndex: index, column: spec.columnName)
        }
        switch pipeline.window {
        case .tumbling(let size):
            precondition(size > 0, "oracle: window size must be positive")
            windowing = .windows(size: Int128(size), slide: Int128(size))
        case .sliding(let size, let slide):
            precondition(size > 0 && slide > 0, "oracle: window size and slide must be positive")
            windowing = .windows(size: Int128(size), slide: Int128(slide))
        case .session(let gap):
            precondition(gap >= 0, "oracle: session gap must not be negative")
            windowing = .sessions(gap: Int128(gap))
        }
        maxOutOfOrderness = Int128(pipeline.watermark.maxOutOfOrdernessMs)
    }

    mutating func process(text: UnsafeBufferPointer<UInt8>, line: Range<Int>, offset: Int) {
        switch parser.parse(text, line) {
        case .malformed(let reason):
            result.deadLetters.append(DeadLetter(partition: partition, offset: offset, reason: reason))
        case .event(let fields) where fields[timeIndex] > Oracle.timeLimit || fields[timeIndex] < -Oracle.timeLimit:
            // The format's rule (docs/DESIGN.md): event times lie within ±2^62 ms.
            result.deadLetters.append(DeadLetter(partition: partition, offset: offset, reason: "event time out of range"))
        case .event(let fields):
            let key = UInt64(bitPattern: fields[keyIndex])
            let time = Int128(fields[timeIndex])
            let watermarkBefore = watermark

            let outcome: Outcome
            switch windowing {
            case .windows(let size, let slide):
                outcome = addToWindows(key: key, time: time, fields: fields, size: size, slide: slide,
                                       watermarkBefore: watermarkBefore)
            case .sessions(let gap):
                outcome = addToSessions(key: key, time: time, fields: fields, gap: gap,
                                        watermarkBefore: watermarkBefore)
            }
            switch outcome {
            case .added: break
            case .late: result.late.append(PartitionOffset(partition: partition, offset: offset))
            case .overflow(let column, let start):
                result.deadLetters.append(DeadLetter(partition: partition, offset: offset,
                                                     reason: "overflow: \(column) of window \(start)"))
            }

            // Late and overflowing events move the watermark too: they were decoded.
            watermark = max(watermark, time - maxOutOfOrderness)
            fireDue()
        }
    }

    /// End of input: the watermark becomes plus infinity and everything still open fires.
    mutating func finish() {
        watermark = .max
        fireDue()
    }

    enum Outcome {
        case added, late
        /// A sum or avg (its column) of the window starting at `start` would not fit an Int64.
        case overflow(column: String, start: Int128)
    }

    // MARK: Tumbling and sliding

    /// Adds the event to each of its windows (starts that are multiples of `slide`, with
    /// start <= t < start + size) whose end is after the watermark. Late if it is in none; an
    /// overflow, changing nothing, if a sum of any of them would leave Int64 (named: the earliest
    /// such window, its first such column).
    mutating func addToWindows(key: UInt64, time: Int128, fields: [Int64], size: Int128, slide: Int128,
                               watermarkBefore: Int128) -> Outcome {
        // The earliest start with t < start + size; walking up from it, the first overflow found
        // is the earliest window's. Every window is checked before any is added to.
        let earliest = floorDivide(time - size, by: slide) * slide + slide
        var inAny = false
        var start = earliest
        while start <= time {
            if start + size > watermarkBefore {
                inAny = true
                // A window the event would open holds it alone, which fits.
                if let column = openWindows[start]?[key]?.firstOverflow(adding: fields, plans) {
                    return .overflow(column: column, start: start)
                }
            }
            start += slide
        }
        if !inAny { return .late }
        start = earliest
        while start <= time {
            let end = start + size
            if end > watermarkBefore {
                openWindows[start, default: [:]][key, default: Accumulator(plans)].add(fields, plans)
                earliestOpenEnd = min(earliestOpenEnd, end)
            }
            start += slide
        }
        return .added
    }

    // MARK: Sessions

    /// Merges [t, t + gap) with every open session of the key that it overlaps or touches. Late
    /// (nothing changed) if the merged session's end is not after the watermark; an overflow
    /// (nothing changed, named by the merged session's start) if a sum of it would leave Int64.
    mutating func addToSessions(key: UInt64, time: Int128, fields: [Int64], gap: Int128,
                                watermarkBefore: Int128) -> Outcome {
        var merged = Session(start: time, end: time + gap, accumulator: Accumulator(plans))
        merged.accumulator.add(fields, plans)
        var untouched: [Session] = []
        for other in sessions[key] ?? [] {
            if time <= other.end && time + gap >= other.start {
                merged.start = min(merged.start, other.start)
                merged.end = max(merged.end, other.end)
                merged.accumulator = merged.accumulator.merged(with: other.accumulator, plans)
            } else {
                untouched.append(other)
            }
        }
        if merged.end <= watermarkBefore { return .late }
        if let column = merged.accumulator.firstOverflow(plans) { return .overflow(column: column, start: merged.start) }
        untouched.append(merged)
        sessions[key] = untouched
        if queuedEnd[key].map({ merged.end < $0 }) ?? true {
            queue(key: key, end: merged.end)
        }
        return .added
    }

    // MARK: Firing

    /// Emits and removes every open window or session whose end is <= the watermark.
    mutating func fireDue() {
        switch windowing {
        case .windows(let size, _): fireWindows(size: size)
        case .sessions: fireSessions()
        }
    }

    mutating func fireWindows(size: Int128) {
        guard earliestOpenEnd <= watermark else { return }
        // Few distinct starts are open at once (a few windows per key), so look at all of them.
        for start in Array(openWindows.keys) where start + size <= watermark {
            for (key, window) in openWindows[start]! {
                result.rows.append(window.row(start: start, key: key, plans))
            }
            openWindows[start] = nil
        }
        earliestOpenEnd = openWindows.keys.min().map { $0 + size } ?? .max
    }

    mutating func fireSessions() {
        while let entry = sessionQueue.peek(), entry.end <= watermark {
            sessionQueue.pop()
            let key = entry.key
            guard queuedEnd[key] == entry.end else { continue }  // stale: the key was queued again
            queuedEnd[key] = nil
            var stillOpen: [Session] = []
            for session in sessions[key] ?? [] {
                if session.end <= watermark {
                    result.rows.append(session.accumulator.row(start: session.start, key: key, plans))
                } else {
                    stillOpen.append(session)
                }
            }
            sessions[key] = stillOpen.isEmpty ? nil : stillOpen
            if let leastEnd = stillOpen.map(\.end).min() {
                queue(key: key, end: leastEnd)
            }
        }
    }

    mutating func queue(key: UInt64, end: Int128) {
        queuedEnd[key] = end
        sessionQueue.push(end: end, key: key)
    }
}

/// Floor division (rounds toward minus infinity), so that windows of negative times are aligned
/// like the others.
func floorDivide(_ a: Int128, by b: Int128) -> Int128 {
    let quotient = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
}

/// A binary min-heap of (end, key) entries, ordered by end.
struct MinQueue {
    struct Entry {
        var end: Int128
        var key: UInt64
    }

    private var entries: [Entry] = []

    func peek() -> Entry? { entries.first }

    mutating func push(end: Int128, key: UInt64) {
        entries.append(Entry(end: end, key: key))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if entries[parent].end <= entries[child].end { break }
            swap(parent, child)
            child = parent
        }
    }

    mutating func pop() {
        guard !entries.isEmpty else { return }
        entries[0] = entries[entries.count - 1]
        entries.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < entries.count && entries[left].end < entries[smallest].end { smallest = left }
            if right < entries.count && entries[right].end < entries[smallest].end { smallest = right }
            if smallest == parent { break }
            swap(parent, smallest)
            parent = smallest
        }
    }

    private mutating func swap(_ i: Int, _ j: Int) {
        let entry = entries[i]
        entries[i] = entries[j]
        entries[j] = entry
    }
}

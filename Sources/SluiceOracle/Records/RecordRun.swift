// The records oracle: one partition of a records job (`!pipeline.isIntegerCSV`), event by event in
// offset order, with the issue-12 contract's order of steps:
//
//   decode (dead letter, W unchanged)
//   → [a derived key or time field: derive first; evaluation error: dead letter, W unchanged]
//   → null key part / partition check (dead letter, W unchanged)
//   → W = max(W, t − maxOutOfOrderness)
//   → derive (evaluation error: dead letter; W has moved)
//   → filter (false or null: dropped and counted; error: dead letter)
//   → late check against the W before this event (late output)
//   → dedupe (duplicate: recorded, dropped)
//   → windows (overflow: dead letter, nothing changes, dedupe state included).
//
// Filter and derive expressions are evaluated with SluiceCore's `TypedExpression` (shared with the
// engine: the expression language has its own reference, docs/EXPRESSIONS.md, and test suite);
// everything else here (splitting, decoding, key bytes, dedupe, windows, aggregates) is the
// oracle's own. Times are Int128, so window arithmetic cannot trap.

import SluiceCore

struct RecordRun {
    let pipeline: Pipeline
    let partition: Int
    let partitions: Int
    let decoder: OracleDecoder
    let fieldCount: Int
    let derived: [TypedExpression]
    let filter: TypedExpression?
    let keyIndices: [Int]
    let timeIndex: Int
    let dedupeIndex: Int?
    let deriveFirst: Bool
    let plans: [RecordAggregatePlan]
    let windowing: PartitionRun.Windowing
    let delay: Int128

    var watermark: Int128 = .min
    var result = OracleResult()

    /// Tumbling and sliding: open windows by start, then by key parts.
    var openWindows: [Int128: [[[UInt8]]: RecordWindow]] = [:]
    var earliestOpenEnd: Int128 = .max
    /// Sessions: each key's open sessions (disjoint, not touching).
    var sessions: [[[UInt8]]: [RecordWindow]] = [:]
    /// Dedupe: per value (as bytes), the time of the first kept event of its current span. Never
    /// dropped: the contract says results never depend on when state is dropped.
    var dedupeFirst: [[UInt8]: Int64] = [:]

    init(pipeline: Pipeline, partition: Int, partitions: Int) {
        precondition(partitions > 0 && partition >= 0 && partition < partitions, "oracle: partition \(partition) of \(partitions)")
        self.pipeline = pipeline
        self.partition = partition
        self.partitions = partitions
        decoder = OracleDecoder(schema: pipeline.schema, format: pipeline.format)
        var fields = pipeline.schema.fields.map { (name: $0.name, type: $0.valueType) }
        var derived: [TypedExpression] = []
        for d in pipeline.derive {
            // A loaded job has well-typed expressions; a broken one here is a programming error.
            guard let parsed = try? Expression.parse(d.expression),
                  let typed = try? TypedExpression(parsed, fields: fields), let type = typed.type else {
                preconditionFailure("oracle: derived field '\(d.name)' does not type-check")
            }
            derived.append(typed)
            fields.append((d.name, type))
        }
        self.derived = derived
        fieldCount = fields.count
        if let text = pipeline.filter {
            guard let parsed = try? Expression.parse(text), let typed = try? TypedExpression(parsed, fields: fields) else {
                preconditionFailure("oracle: the filter does not type-check")
            }
            filter = typed
        } else {
            filter = nil
        }
        func index(_ name: String) -> Int {
            guard let i = fields.firstIndex(where: { $0.name.utf8.elementsEqual(name.utf8) }) else {
                preconditionFailure("oracle: no field '\(name)'")
            }
            return i
        }
        keyIndices = pipeline.keyFields.map(index)
        timeIndex = index(pipeline.timeField)
        dedupeIndex = pipeline.dedupe.map { index($0.field) }
        let schemaCount = pipeline.schema.fields.count
        deriveFirst = (keyIndices + [timeIndex]).contains { $0 >= schemaCount }
        plans = pipeline.aggregates.map { spec in
            let i = spec.field.map(index)
            return RecordAggregatePlan(function: spec.function, fieldIndex: i, fieldType: i.map { fields[$0].type },
                                       column: spec.columnName)
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
        delay = Int128(pipeline.watermark.maxOutOfOrdernessMs)
        result.keyColumns = pipeline.keyFields.count
    }

    mutating func dead(_ offset: Int, _ reason: String) {
        result.deadLetters.append(DeadLetter(partition: partition, offset: offset, reason: reason))
    }

    /// Appends the derived fields' values to `values`; the evaluation error's text if one fails.
    func derive(_ values: inout [Value]) -> String? {
        for expression in derived {
            switch expression.evaluate(values) {
            case .success(let v): values.append(v)
            case .failure(let e): return e.message
            }
        }
        return nil
    }

    mutating func process(_ record: SplitRecord, offset: Int, columns: [Int?]?) {
        var values: [Value]
        switch decoder.decode(record, columns: columns) {
        case .dead(let reason): return dead(offset, reason)
        case .values(let v): values = v
        }
        if deriveFirst, let error = derive(&values) { return dead(offset, error) }

        // The event time: int64 or timestamp, within ±2^62 ms (else a dead letter, W unchanged).
        let time: Int64
        switch values[timeIndex] {
        case .int64(let t), .timestamp(let t): time = t
        case .null: return dead(offset, "the time field '\(pipeline.timeField)' is null")
        default: return dead(offset, "the time field '\(pipeline.timeField)' is not a time")
        }
        guard time <= Oracle.timeLimit, time >= -Oracle.timeLimit else { return dead(offset, "event time out of range") }

        let keyParts = keyIndices.map { values[$0] }
        if let i = keyParts.firstIndex(where: \.isNull) { return dead(offset, "key field '\(pipeline.keyFields[i])' is null") }
        if pipeline.partitionCheck {
            let owner = keyPartition(keyParts)
            if owner != partition {
                let shown = keyParts.map(RecordText.text).joined(separator: ",")
                return dead(offset, "key \(shown) belongs to partition \(owner), read in \(partition)")
            }
        }

        let watermarkBefore = watermark
        watermark = max(watermark, Int128(time) - delay)
        defer { fireDue() }

        if !deriveFirst, let error = derive(&values) { return dead(offset, error) }
        if let filter {
            switch filter.evaluate(values) {
            case .failure(let e): return dead(offset, e.message)
            case .success(.bool(true)): break
            case .success: result.filtered += 1; return
            }
        }

        let key = keyParts.map(Self.identity)
        let t = Int128(time)
        if isLate(key: key, time: t, watermarkBefore: watermarkBefore) {
            result.late.append(PartitionOffset(partition: partition, offset: offset))
            return
        }

        // Dedupe is decided here but its state changes only once the event is kept (not an overflow).
        var dedupeKey: [UInt8]? = nil
        if let dedupe = pipeline.dedupe, let index = dedupeIndex, !values[index].isNull {
            let k = Self.identity(values[index])
            if let first = dedupeFirst[k], abs(Int128(time) - Int128(first)) <= Int128(dedupe.withinMs) {
                result.duplicates.append(OracleDuplicate(partition: partition, offset: offset, value: RecordText.text(values[index])))
                return
            }
            dedupeKey = k
        }

        let event = WindowEvent(offset: offset, time: time, values: values)
        let overflow: (column: String, start: Int128)?
        switch windowing {
        case .windows(let size, let slide):
            overflow = addToWindows(key: key, parts: keyParts, event: event, size: size, slide: slide, watermarkBefore: watermarkBefore)
        case .sessions(let gap):
            overflow = addToSessions(key: key, parts: keyParts, event: event, gap: gap, watermarkBefore: watermarkBefore)
        }
        if let overflow { return dead(offset, "overflow: \(overflow.column) of window \(overflow.start)") }
        if let dedupeKey { dedupeFirst[dedupeKey] = time }
    }

    /// The partition the key belongs to (`pipeline.partitioner`, P = `partitions`).
    func keyPartition(_ parts: [Value]) -> Int {
        switch pipeline.partitioner {
        case .modulo:
            let p = Int128(partitions)
            switch parts.first {
            case .int64(let k): return Int(((Int128(k) % p) + p) % p)
            case .uint64(let k): return Int(Int128(k) % p)
            default: preconditionFailure("oracle: modulo needs a single integer key")
            }
        case .murmur2:
            let hash = UInt32(bitPattern: Murmur2.hash(Self.keyBytes(parts)))
            return Int(hash & 0x7fff_ffff) % partitions
        case .consistentRandom:
            // CRC-32 bit by bit (the engine uses a table): zlib's polynomial, reflected.
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in Self.keyBytes(parts) {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 0 ? 0 : 0xEDB8_8320) }
            }
            return Int((crc ^ 0xFFFF_FFFF) % UInt32(partitions))
        }
    }

    /// The contract's canonical key bytes: UTF-8 text; int64/uint64 in decimal; bool
    /// `true`/`false`; decimal with exactly `scale` fraction digits; timestamp as decimal ms;
    /// parts joined by 0x1f.
    static func keyBytes(_ parts: [Value]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (i, part) in parts.enumerated() {
            if i > 0 { bytes.append(0x1F) }
            switch part {
            case .string(let s): bytes += Array(s.utf8)
            case .int64(let v): bytes += Array(String(v).utf8)
            case .uint64(let v): bytes += Array(String(v).utf8)
            case .bool(let v): bytes += Array((v ? "true" : "false").utf8)
            case .timestamp(let ms): bytes += Array(String(ms).utf8)
            case .decimal(let unscaled, let scale): bytes += Array(decimalText(unscaled, scale: scale).utf8)
            case .float64, .null: preconditionFailure("oracle: a float or null key part")
            }
        }
        return bytes
    }

    /// `-12.30` for (-1230, 2): the digits of |unscaled|, padded to scale + 1, a point before the
    /// last `scale` of them.
    static func decimalText(_ unscaled: Int64, scale: Int) -> String {
        var digits = String(unscaled.magnitude)
        if scale > 0 {
            while digits.count < scale + 1 { digits = "0" + digits }
            digits = digits.dropLast(scale) + "." + digits.suffix(scale)
        }
        return (unscaled < 0 ? "-" : "") + digits
    }

    /// What makes two values the same key part or dedupe value: strings by their UTF-8 bytes.
    static func identity(_ v: Value) -> [UInt8] { RecordWindow.distinctKey(v) }

    // MARK: lateness

    /// Tumbling and sliding: late when no window containing t ends after W (the latest such
    /// window starts at the last multiple of slide <= t). Sessions: late when [t, t + gap), merged
    /// with the key's open sessions it overlaps or touches, ends at or before W.
    mutating func isLate(key: [[UInt8]], time: Int128, watermarkBefore: Int128) -> Bool {
        switch windowing {
        case .windows(let size, let slide):
            return floorDivide(time, by: slide) * slide + size <= watermarkBefore
        case .sessions(let gap):
            fireSessions(of: key, upTo: watermarkBefore)
            var end = time + gap
            for s in sessions[key] ?? [] where time <= s.end && time + gap >= s.start { end = max(end, s.end) }
            return end <= watermarkBefore
        }
    }

    // MARK: windows

    /// Adds the event to each window containing it that ends after W (all checked first); the
    /// earliest overflowing window and its first overflowing column, changing nothing, if any.
    mutating func addToWindows(key: [[UInt8]], parts: [Value], event: WindowEvent, size: Int128, slide: Int128,
                               watermarkBefore: Int128) -> (column: String, start: Int128)? {
        let time = Int128(event.time)
        let earliest = floorDivide(time - size, by: slide) * slide + slide
        let extra = RecordWindow.summands(event, plans)
        var starts: [Int128] = []
        var start = earliest
        while start <= time {
            if start + size > watermarkBefore { starts.append(start) }
            start += slide
        }
        for start in starts {
            let window = openWindows[start]?[key] ?? RecordWindow(start: start, end: start + size, keyParts: parts, plans: plans)
            if let column = window.firstOverflow(adding: extra, plans, averaging: extra) { return (column, start) }
        }
        for start in starts {
            openWindows[start, default: [:]][key, default: RecordWindow(start: start, end: start + size, keyParts: parts, plans: plans)]
                .add(event, plans)
            earliestOpenEnd = min(earliestOpenEnd, start + size)
        }
        return nil
    }

    /// Merges [t, t + gap) with the key's open sessions it overlaps or touches; an overflow of the
    /// merged session (named by its start) changes nothing.
    mutating func addToSessions(key: [[UInt8]], parts: [Value], event: WindowEvent, gap: Int128,
                                watermarkBefore: Int128) -> (column: String, start: Int128)? {
        let time = Int128(event.time)
        var merged = RecordWindow(start: time, end: time + gap, keyParts: parts, plans: plans)
        merged.add(event, plans)
        var untouched: [RecordWindow] = []
        for other in sessions[key] ?? [] {
            if time <= other.end && time + gap >= other.start {
                merged.merge(other)
            } else {
                untouched.append(other)
            }
        }
        if let column = merged.firstOverflow(adding: plans.map { _ in 0 }, plans, averaging: RecordWindow.summands(event, plans)) {
            return (column, merged.start)
        }
        sessions[key] = untouched + [merged]
        return nil
    }

    // MARK: firing

    mutating func fireDue() {
        guard case .windows = windowing, earliestOpenEnd <= watermark else { return }
        for start in Array(openWindows.keys) {
            guard let byKey = openWindows[start], let any = byKey.first?.value, any.end <= watermark else { continue }
            for window in byKey.values { result.records.append(window.output(plans)) }
            openWindows[start] = nil
        }
        earliestOpenEnd = openWindows.values.compactMap { $0.first?.value.end }.min() ?? .max
    }

    /// Emits the key's sessions that end at or before `w` (done lazily per key: a session of
    /// another key never meets this key's events).
    mutating func fireSessions(of key: [[UInt8]], upTo w: Int128) {
        guard let list = sessions[key] else { return }
        var open: [RecordWindow] = []
        for s in list {
            if s.end <= w { result.records.append(s.output(plans)) } else { open.append(s) }
        }
        sessions[key] = open.isEmpty ? nil : open
    }

    /// End of input: everything still open fires.
    mutating func finish() {
        watermark = .max
        fireDue()
        for list in sessions.values {
            for s in list { result.records.append(s.output(plans)) }
        }
        sessions = [:]
    }
}

extension Oracle {
    /// The result of one partition's records (a records job: `!pipeline.isIntegerCSV`).
    static func runRecords(pipeline: Pipeline, partition: Int, partitions: Int, text: [UInt8]) -> OracleResult {
        var run = RecordRun(pipeline: pipeline, partition: partition, partitions: partitions)
        let (header, records) = RecordSplitter.split(text, format: pipeline.format)
        var columns: [Int?]? = nil
        var headerProblem: String? = nil
        if let header {
            switch run.decoder.columns(ofHeader: header) {
            case .success(let c): columns = c
            case .failure(let e): headerProblem = e.description
            }
        } else if case .csv(header: true, _) = pipeline.format {
            columns = pipeline.schema.fields.map { _ in nil }
        }
        for (offset, record) in records.enumerated() {
            // A header that cannot be read makes every record a dead letter (W never moves).
            if let headerProblem { run.dead(offset, headerProblem); continue }
            run.process(record, offset: offset, columns: columns)
        }
        run.finish()
        var result = run.result
        result.rows = result.records.map(\.text)
        result.sort()
        return result
    }
}

import Foundation
import SluiceCore
import SluiceJob
import SluiceWorkload

/// `sluice split`: one CSV or JSON-lines file into P partition files `DIR/part-00000.<ext>` … by the
/// job's key and partitioner (`KeyPartitioner` over `KeyBytes`, the rule the partition check and
/// Kafka's producers use), for users whose input is not partitioned yet. A CSV header is copied to
/// every part; records are copied byte for byte. A record that cannot be decoded, whose derived
/// key cannot be computed, or whose key is null goes to `DIR/unpartitioned.<ext>` instead.
public struct Splitter {
    public struct Summary: Sendable, Equatable {
        /// Records written to each partition file.
        public var perPartition: [Int]
        /// Records written to `unpartitioned.<ext>`.
        public var unpartitioned: Int
        /// Where those went (nil when there were none and no file was made).
        public var unpartitionedPath: String?
    }

    public struct SplitError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    let pipeline: Pipeline
    let partitioner: KeyPartitioner
    let decoder: RecordDecoder
    /// The key's position in the record (schema fields, then derived fields).
    let keyIndexes: [Int]
    /// The derived fields to compute, in order (only as many as the key needs).
    let derived: [TypedExpression]

    public init(job: JobSpec, partitions: Int) throws {
        guard partitions > 0 else { throw SplitError("--partitions must be at least 1, got \(partitions)") }
        pipeline = job.pipeline
        partitioner = KeyPartitioner(pipeline.partitioner, partitions: partitions)
        decoder = RecordDecoder(schema: pipeline.schema, format: pipeline.format)
        var fields = pipeline.schema.fields.map { (name: $0.name, type: $0.valueType) }
        var derived: [TypedExpression] = []
        for d in pipeline.derive where !pipeline.keyFields.allSatisfy({ name in fields.contains { $0.name == name } }) {
            let typed: TypedExpression
            do {
                typed = try TypedExpression(Expression.parse(d.expression), fields: fields)
            } catch {
                throw SplitError("job: derive '\(d.name)': \(error)")
            }
            derived.append(typed)
            fields.append((d.name, typed.type ?? .string))
        }
        self.derived = derived
        keyIndexes = try pipeline.keyFields.map { name in
            guard let i = fields.firstIndex(where: { $0.name == name }) else { throw SplitError("job: key field '\(name)' is not a field") }
            return i
        }
    }

    var fileExtension: String {
        if case .json = pipeline.format { return "json" }
        return "csv"
    }

    /// The partition of one record (without its line end); nil: unpartitioned.
    func partition(of record: UnsafeRawBufferPointer, columns: [Int?]?) -> Int? {
        guard case .success(var values) = decoder.decode(record, columns: columns) else { return nil }
        for expression in derived {
            guard case .success(let v) = expression.evaluate(values) else { return nil }
            values.append(v)
        }
        return partitioner.partition(of: keyIndexes.map { values[$0] })
    }

    /// Splits `input` into `directory`, which must be absent or empty.
    public func split(input: String, into directory: String) throws -> Summary {
        guard let handle = FileHandle(forReadingAtPath: input) else {
            throw SplitError("--input: cannot open '\(input)'")
        }
        defer { try? handle.close() }
        let fm = FileManager.default
        if let existing = try? fm.contentsOfDirectory(atPath: directory), !existing.isEmpty {
            throw SplitError("--out: '\(directory)' is not empty; choose a new or empty directory")
        }
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SplitError("--out: cannot create '\(directory)': \(error.localizedDescription)")
        }
        let format: LineFormat = fileExtension == "json" ? .json : .csv
        var outputs: [Output] = try (0..<partitioner.partitions).map {
            try Output(path: (directory as NSString).appendingPathComponent(PartitionFiles.name(partition: $0, format: format)))
        }
        let restPath = (directory as NSString).appendingPathComponent("unpartitioned.\(fileExtension)")
        var rest: Output?
        var header: [UInt8]?
        var columns: [Int?]?
        var summary = Summary(perPartition: Array(repeating: 0, count: partitioner.partitions), unpartitioned: 0)
        let wantsHeader: Bool = { if case .csv(true, _) = pipeline.format { return true } else { return false } }()

        func take(_ record: UnsafeRawBufferPointer) throws {
            if wantsHeader && header == nil {
                header = Array(record)
                switch decoder.columns(ofHeader: record) {
                case .success(let c): columns = c
                case .failure(let f): throw SplitError("--input: '\(input)': \(f.reason)")
                }
                for i in outputs.indices { try outputs[i].write(record) }
                return
            }
            if let p = partition(of: record, columns: columns) {
                try outputs[p].write(record)
                summary.perPartition[p] += 1
            } else {
                if rest == nil {
                    rest = try Output(path: restPath)
                    if let header { try header.withUnsafeBytes { try rest?.write($0) } }
                }
                try rest?.write(record)
                summary.unpartitioned += 1
            }
        }

        // Whole records only: a CSV record ends at a line end outside quotes, a JSON one at a line end.
        var pending: [UInt8] = []
        let isCSV = fileExtension == "csv"
        while true {
            let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            let atEnd = chunk.isEmpty
            pending.append(contentsOf: chunk)
            var consumed = 0
            try pending.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                var start = 0
                while start < raw.count {
                    let end: Int
                    if isCSV {
                        let found = CSVRecords.recordEnd(base, from: start, count: raw.count)
                        if found.end == raw.count && !atEnd { break }  // the rest comes with the next chunk
                        end = found.end
                    } else if let newline = raw[start...].firstIndex(of: 10) {
                        end = newline
                    } else if atEnd {
                        end = raw.count
                    } else {
                        break
                    }
                    try take(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
                    start = end + 1
                }
                consumed = min(start, raw.count)
            }
            pending.removeFirst(consumed)
            if atEnd { break }
        }
        for i in outputs.indices { try outputs[i].close() }
        try rest?.close()
        if rest != nil { summary.unpartitionedPath = restPath }
        return summary
    }

    /// A partition file written through a buffer.
    struct Output {
        let path: String
        let handle: FileHandle
        var buffer: [UInt8] = []

        init(path: String) throws {
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                throw SplitError("--out: cannot create '\(path)'")
            }
            self.path = path
            self.handle = handle
        }

        mutating func write(_ record: UnsafeRawBufferPointer) throws {
            buffer.append(contentsOf: record)
            buffer.append(10)
            if buffer.count >= 1 << 20 { try flush() }
        }

        mutating func flush() throws {
            guard !buffer.isEmpty else { return }
            try handle.write(contentsOf: buffer)
            buffer.removeAll(keepingCapacity: true)
        }

        mutating func close() throws {
            try flush()
            try handle.close()
        }
    }
}

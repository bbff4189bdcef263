// The binary form of typed values, keys and window aggregates in a records job's snapshot. Each
// value is a tag byte and its payload; a corrupt snapshot throws (it never traps).

enum RecordStateCodec {
    static func write(_ value: Value, to writer: inout BinaryWriter) {
        switch value {
        case .null: writer.write(UInt8(0))
        case .string(let s): writer.write(UInt8(1)); writer.write(bytes: Array(s.utf8))
        case .int64(let v): writer.write(UInt8(2)); writer.writeVarInt(v)
        case .uint64(let v): writer.write(UInt8(3)); writer.writeVarUInt(v)
        case .float64(let v): writer.write(UInt8(4)); writer.write(v.bitPattern)
        case .bool(let v): writer.write(UInt8(5)); writer.write(UInt8(v ? 1 : 0))
        case .timestamp(let v): writer.write(UInt8(6)); writer.writeVarInt(v)
        case .decimal(let v, let scale): writer.write(UInt8(7)); writer.writeVarInt(v); writer.write(UInt8(scale))
        }
    }

    static func readValue(from reader: inout BinaryReader) throws -> Value {
        switch try reader.readUInt8() {
        case 0: return .null
        case 1:
            guard let s = String(validating: try reader.readBytes(), as: UTF8.self) else { throw CodecError.corrupt("a string that is not UTF-8") }
            return .string(s)
        case 2: return .int64(try reader.readVarInt())
        case 3: return .uint64(try reader.readVarUInt())
        case 4:
            let v = Double(bitPattern: try reader.readUInt64())
            guard v.isFinite else { throw CodecError.corrupt("a float that is not finite") }
            return .float64(v)
        case 5: return .bool(try reader.readUInt8() != 0)
        case 6: return .timestamp(try reader.readVarInt())
        case 7:
            let v = try reader.readVarInt()
            let scale = Int(try reader.readUInt8())
            guard scale <= ValueType.maxScale else { throw CodecError.corrupt("decimal scale \(scale)") }
            return .decimal(v, scale: scale)
        case let tag: throw CodecError.corrupt("unknown value tag \(tag)")
        }
    }

    static func write(_ key: RecordKey, to writer: inout BinaryWriter) {
        writer.writeVarUInt(UInt64(key.parts.count))
        for part in key.parts { write(part, to: &writer) }
    }

    static func readKey(from reader: inout BinaryReader) throws -> RecordKey {
        let count = try reader.readVarUInt()
        guard count <= UInt64(reader.remaining) else { throw CodecError.corrupt("key part count too large") }
        return RecordKey(parts: try (0..<count).map { _ in try readValue(from: &reader) })
    }

    static func write(_ window: WindowAggregates, to writer: inout BinaryWriter) {
        writer.writeVarInt(window.count)
        for state in window.states {
            switch state {
            case .count: writer.write(UInt8(0))
            case .exactSum(let sum, let n): writer.write(UInt8(1)); writer.writeVarInt(sum); writer.writeVarInt(n)
            case .floatSum(let sum, let n): writer.write(UInt8(2)); writer.write(sum.bitPattern); writer.writeVarInt(n)
            case .extreme(let v): writer.write(UInt8(3)); write(v, to: &writer)
            case .distinct(let set):
                writer.write(UInt8(4))
                writer.writeVarUInt(UInt64(set.count))
                for v in set { write(v, to: &writer) }
            case .pick(let time, let offset, let v):
                writer.write(UInt8(5)); writer.writeVarInt(time); writer.writeVarInt(offset); write(v, to: &writer)
            }
        }
    }

    static func readWindow(from reader: inout BinaryReader, plans: [RecordAggregatePlan]) throws -> WindowAggregates {
        let count = try reader.readVarInt()
        var states: [AggregateState] = []
        states.reserveCapacity(plans.count)
        for _ in plans {
            switch try reader.readUInt8() {
            case 0: states.append(.count)
            case 1: states.append(.exactSum(try reader.readVarInt(), n: try reader.readVarInt()))
            case 2: states.append(.floatSum(Double(bitPattern: try reader.readUInt64()), n: try reader.readVarInt()))
            case 3: states.append(.extreme(try readValue(from: &reader)))
            case 4:
                let n = try reader.readVarUInt()
                guard n <= UInt64(reader.remaining) else { throw CodecError.corrupt("distinct set too large") }
                var set = Set<Value>(minimumCapacity: Int(n))
                for _ in 0..<n { set.insert(try readValue(from: &reader)) }
                states.append(.distinct(set))
            case 5: states.append(.pick(time: try reader.readVarInt(), offset: try reader.readVarInt(), value: try readValue(from: &reader)))
            case let tag: throw CodecError.corrupt("unknown aggregate tag \(tag)")
            }
        }
        let window = WindowAggregates(count: count, states: states)
        // The state must be of the shape the plans make (a snapshot of another job is refused
        // by the fingerprint first; this catches a damaged one).
        for (state, fresh) in zip(states, WindowAggregates(plans: plans).states) {
            switch (state, fresh) {
            case (.count, .count), (.exactSum, .exactSum), (.floatSum, .floatSum), (.extreme, .extreme), (.distinct, .distinct), (.pick, .pick): continue
            default: throw CodecError.corrupt("aggregate state of the wrong kind")
            }
        }
        return window
    }
}

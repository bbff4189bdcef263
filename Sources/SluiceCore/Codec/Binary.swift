/// Appends little-endian fixed-width integers, LEB128 varints and byte strings to a growing buffer.
public struct BinaryWriter {
    @usableFromInline var storage: [UInt8]

    /// The bytes written so far.
    public var bytes: [UInt8] { storage }

    public init(capacity: Int = 0) {
        storage = []
        storage.reserveCapacity(capacity)
    }

    @inlinable public mutating func write(_ v: UInt8) {
        storage.append(v)
    }

    @inlinable public mutating func write(_ v: UInt16) { writeFixed(v) }
    @inlinable public mutating func write(_ v: UInt32) { writeFixed(v) }
    @inlinable public mutating func write(_ v: UInt64) { writeFixed(v) }
    @inlinable public mutating func write(_ v: Int64) { writeFixed(UInt64(bitPattern: v)) }

    @inlinable mutating func writeFixed<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { storage.append(contentsOf: $0) }
    }

    /// Unsigned LEB128: 7 bits per byte, low groups first, high bit set on all but the last byte (1...10 bytes).
    @inlinable public mutating func writeVarUInt(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            storage.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        storage.append(UInt8(v))
    }

    /// Zigzag-maps the value (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) so small negatives stay short, then LEB128.
    @inlinable public mutating func writeVarInt(_ v: Int64) {
        writeVarUInt(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    /// A varuint byte count followed by the bytes.
    @inlinable public mutating func write(bytes: [UInt8]) {
        writeVarUInt(UInt64(bytes.count))
        storage.append(contentsOf: bytes)
    }

    /// The bytes as they are, with no length prefix.
    @inlinable public mutating func writeRaw(_ bytes: [UInt8]) {
        storage.append(contentsOf: bytes)
    }
}

/// Reads what `BinaryWriter` writes. Every read checks the remaining length first and throws
/// `CodecError.truncated` (or `.corrupt` for impossible varints and length prefixes), so hostile
/// input can never trap or over-allocate.
public struct BinaryReader {
    @usableFromInline let storage: [UInt8]
    @usableFromInline var cursor: Int

    public init(_ bytes: [UInt8]) {
        storage = bytes
        cursor = 0
    }

    /// Bytes consumed so far.
    @inlinable public var offset: Int { cursor }
    /// Bytes left to read.
    @inlinable public var remaining: Int { storage.count - cursor }
    @inlinable public var isAtEnd: Bool { cursor >= storage.count }

    @inlinable public mutating func readUInt8() throws -> UInt8 {
        guard cursor < storage.count else { throw CodecError.truncated }
        defer { cursor += 1 }
        return storage[cursor]
    }

    @inlinable public mutating func readUInt16() throws -> UInt16 { try readFixed(UInt16.self) }
    @inlinable public mutating func readUInt32() throws -> UInt32 { try readFixed(UInt32.self) }
    @inlinable public mutating func readUInt64() throws -> UInt64 { try readFixed(UInt64.self) }
    @inlinable public mutating func readInt64() throws -> Int64 { Int64(bitPattern: try readFixed(UInt64.self)) }

    @inlinable mutating func readFixed<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard storage.count - cursor >= size else { throw CodecError.truncated }
        let start = cursor
        let raw = storage.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: start, as: T.self) }
        cursor += size
        return T(littleEndian: raw)
    }

    /// Unsigned LEB128. At most 10 bytes, and the 10th may only carry bit 63.
    @inlinable public mutating func readVarUInt() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        for index in 0..<10 {
            let byte = try readUInt8()
            if index == 9 && byte > 1 {
                throw CodecError.corrupt(byte & 0x80 != 0 ? "varint longer than 10 bytes" : "varint overflows 64 bits")
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw CodecError.corrupt("varint longer than 10 bytes")  // unreachable: the 10th byte is checked above
    }

    @inlinable public mutating func readVarInt() throws -> Int64 {
        let u = try readVarUInt()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// A varuint byte count followed by that many bytes.
    @inlinable public mutating func readBytes() throws -> [UInt8] {
        let length = try readVarUInt()
        // Checked before converting or allocating: the prefix may be anything up to 2^64 - 1.
        guard length <= UInt64(remaining) else {
            throw CodecError.corrupt("length prefix \(length) exceeds the \(remaining) remaining bytes")
        }
        return try readRaw(count: Int(length))
    }

    /// Exactly `count` bytes, with no length prefix.
    @inlinable public mutating func readRaw(count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw CodecError.corrupt("negative byte count \(count)") }
        guard count <= remaining else { throw CodecError.truncated }
        defer { cursor += count }
        return Array(storage[cursor..<(cursor + count)])
    }
}

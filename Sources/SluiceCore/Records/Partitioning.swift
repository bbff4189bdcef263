/// Which partition a key belongs to: part of the contract, so that producers (Kafka's Java client,
/// `sluice split`, the generators, CDC) and the engine's partition check agree on every key.
public struct KeyPartitioner: Sendable, Equatable {
    public let partitioner: Partitioner
    public let partitions: Int

    public init(_ partitioner: Partitioner, partitions: Int) {
        precondition(partitions > 0, "at least one partition")
        self.partitioner = partitioner
        self.partitions = partitions
    }

    /// The partition of a key given as its parts' values; nil when a part is null (a dead letter)
    /// or when `modulo` meets a key that is not a single integer (refused when the job loads).
    public func partition(of parts: [Value]) -> Int? {
        switch partitioner {
        case .modulo:
            guard parts.count == 1 else { return nil }
            switch parts[0] {
            case .int64(let k): return KeyPartitioner.euclidean(k, partitions)
            case .uint64(let k): return Int(k % UInt64(partitions))
            default: return nil
            }
        case .murmur2:
            var bytes: [UInt8] = []
            guard KeyBytes.append(parts, to: &bytes) else { return nil }
            return murmur2Partition(bytes)
        case .consistentRandom:
            var bytes: [UInt8] = []
            guard KeyBytes.append(parts, to: &bytes) else { return nil }
            return crc32Partition(bytes)
        }
    }

    /// `(murmur2(bytes) & 0x7fffffff) % P`, as the Kafka Java client's default partitioner.
    public func murmur2Partition(_ bytes: some Collection<UInt8>) -> Int {
        Int(UInt32(bitPattern: Murmur2.hash(bytes)) & 0x7fff_ffff) % partitions
    }

    /// `crc32(bytes) % P`, as librdkafka's `consistent_random` partitioner places a keyed message.
    public func crc32Partition(_ bytes: some Collection<UInt8>) -> Int {
        Int(CRC32.checksum(bytes) % UInt32(partitions))
    }

    /// `((key % P) + P) % P`: a negative key still lands in 0..<P.
    public static func euclidean(_ key: Int64, _ partitions: Int) -> Int {
        let p = Int64(partitions)
        return Int(((key % p) + p) % p)
    }
}

/// A key's canonical bytes, hashed by murmur2: strings as UTF-8; int64 and uint64 in decimal (`-`
/// for negatives); bool `true`/`false`; decimal in canonical text with exactly `scale` fraction
/// digits; timestamp as decimal milliseconds; the parts of a composite key joined by 0x1f.
public enum KeyBytes {
    public static let separator: UInt8 = 0x1F

    /// Appends the parts; false when one is null.
    public static func append(_ parts: [Value], to bytes: inout [UInt8]) -> Bool {
        for (i, part) in parts.enumerated() {
            if i > 0 { bytes.append(separator) }
            guard append(part, to: &bytes) else { return false }
        }
        return true
    }

    public static func append(_ value: Value, to bytes: inout [UInt8]) -> Bool {
        switch value {
        case .null: return false
        case .string(let s): bytes.append(contentsOf: s.utf8)
        case .int64(let v): bytes.append(contentsOf: String(v).utf8)
        case .uint64(let v): bytes.append(contentsOf: String(v).utf8)
        case .bool(let v): bytes.append(contentsOf: (v ? "true" : "false").utf8)
        case .timestamp(let ms): bytes.append(contentsOf: String(ms).utf8)
        case .decimal(let unscaled, let scale): bytes.append(contentsOf: DecimalText.format(unscaled, scale: scale).utf8)
        case .float64(let v): bytes.append(contentsOf: "\(v)".utf8)  // never a key (refused at load)
        }
        return true
    }
}

/// MurmurHash2, 32-bit, as Kafka's `Utils.murmur2` computes it (seed 0x9747b28c).
public enum Murmur2 {
    public static func hash(_ data: some Collection<UInt8>) -> Int32 {
        let bytes = Array(data)
        let length = bytes.count
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: length)
        let blocks = length / 4
        for i in 0..<blocks {
            let j = i * 4
            var k = UInt32(bytes[j]) | UInt32(bytes[j + 1]) << 8 | UInt32(bytes[j + 2]) << 16 | UInt32(bytes[j + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = blocks * 4
        switch length % 4 {
        case 3:
            h ^= UInt32(bytes[tail + 2]) << 16
            h ^= UInt32(bytes[tail + 1]) << 8
            h ^= UInt32(bytes[tail])
            h = h &* m
        case 2:
            h ^= UInt32(bytes[tail + 1]) << 8
            h ^= UInt32(bytes[tail])
            h = h &* m
        case 1:
            h ^= UInt32(bytes[tail])
            h = h &* m
        default:
            break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }
}

/// CRC-32 (IEEE 802.3, zlib's), which librdkafka's `consistent_random` partitioner hashes keys with.
public enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ data: some Collection<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}

import Testing
@testable import SluiceCore

/// Deterministic PRNG so failures reproduce (SplitMix64, Steele et al.).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomBytes(_ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
}

/// Bit-at-a-time CRC-32C, the obviously-correct reference for the sliced implementation.
func referenceCRC32C(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    }
    return ~c
}

/// A payload that looks like real state: varint-encoded keys and counters mixed with random bytes,
/// so the LZ4 body holds both literals and matches.
func statePayload(_ count: Int, seed: UInt64) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    var w = BinaryWriter(capacity: count)
    while w.bytes.count < count {
        w.write(bytes: Array("window-\(UInt8.random(in: 0...40, using: &rng))".utf8))
        w.writeVarInt(Int64.random(in: -1000...1000, using: &rng))
        w.write(UInt64.random(in: 0...UInt64(UInt32.max), using: &rng))
        if Bool.random(using: &rng) { w.writeRaw(randomBytes(Int.random(in: 0...8, using: &rng), &rng)) }
    }
    return Array(w.bytes.prefix(count))
}

@Suite struct CodecTests {
    // MARK: CRC32C

    @Test func crc32cKnownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        // RFC 3720 (iSCSI) appendix B.4.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
    }

    @Test func crc32cMatchesReferenceAtEveryLengthAndAlignment() {
        var rng = SplitMix64(seed: 1)
        let data = randomBytes(300, &rng)
        for start in 0..<9 {
            for end in stride(from: start, through: data.count, by: 7) {
                let slice = Array(data[start..<end])
                let sliced = data.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
                #expect(sliced == referenceCRC32C(slice))
            }
        }
    }

    @Test func crc32cContinuingAcrossSplitsEqualsWhole() {
        var rng = SplitMix64(seed: 2)
        let data = randomBytes(1000, &rng)
        let whole = CRC32C.checksum(data)
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let continued = data.withUnsafeBytes { all in
                let first = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[0..<split]))
                return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[split...]), continuing: first)
            }
            #expect(continued == whole, "split at \(split)")
        }
        // Three pieces.
        let a = CRC32C.checksum(Array(data[0..<3]))
        let b = Array(data[3..<600]).withUnsafeBytes { CRC32C.checksum($0, continuing: a) }
        let c = Array(data[600...]).withUnsafeBytes { CRC32C.checksum($0, continuing: b) }
        #expect(c == whole)
    }

    // MARK: BinaryWriter / BinaryReader

    enum Value: Equatable {
        case u8(UInt8), u16(UInt16), u32(UInt32), u64(UInt64), i64(Int64)
        case varU(UInt64), varI(Int64), bytes([UInt8])
    }

    static func write(_ values: [Value]) -> [UInt8] {
        var w = BinaryWriter()
        for v in values {
            switch v {
            case .u8(let x): w.write(x)
            case .u16(let x): w.write(x)
            case .u32(let x): w.write(x)
            case .u64(let x): w.write(x)
            case .i64(let x): w.write(x)
            case .varU(let x): w.writeVarUInt(x)
            case .varI(let x): w.writeVarInt(x)
            case .bytes(let x): w.write(bytes: x)
            }
        }
        return w.bytes
    }

    /// Reads back values of the same kinds as `shape`.
    static func read(_ bytes: [UInt8], shape: [Value]) throws -> [Value] {
        var r = BinaryReader(bytes)
        var out: [Value] = []
        for v in shape {
            switch v {
            case .u8: out.append(.u8(try r.readUInt8()))
            case .u16: out.append(.u16(try r.readUInt16()))
            case .u32: out.append(.u32(try r.readUInt32()))
            case .u64: out.append(.u64(try r.readUInt64()))
            case .i64: out.append(.i64(try r.readInt64()))
            case .varU: out.append(.varU(try r.readVarUInt()))
            case .varI: out.append(.varI(try r.readVarInt()))
            case .bytes: out.append(.bytes(try r.readBytes()))
            }
        }
        #expect(r.isAtEnd)
        return out
    }

    static func randomValues(_ count: Int, _ rng: inout SplitMix64) -> [Value] {
        let edges: [Value] = [
            .varU(0), .varU(127), .varU(128), .varU(UInt64.max), .varU(1 << 63),
            .varI(0), .varI(-1), .varI(1), .varI(Int64.min), .varI(Int64.max),
            .u64(.max), .i64(.min), .i64(.max), .u16(.max), .u32(.max), .u8(.max), .bytes([]),
        ]
        var values = edges
        for _ in 0..<count {
            // Vary the magnitude so varints of every length appear.
            let bits = UInt64.random(in: 0...64, using: &rng)
            let wide = bits == 64 ? rng.next() : rng.next() & ((1 << bits) - 1)
            switch rng.next() % 8 {
            case 0: values.append(.u8(UInt8(truncatingIfNeeded: wide)))
            case 1: values.append(.u16(UInt16(truncatingIfNeeded: wide)))
            case 2: values.append(.u32(UInt32(truncatingIfNeeded: wide)))
            case 3: values.append(.u64(wide))
            case 4: values.append(.i64(Int64(bitPattern: wide)))
            case 5: values.append(.varU(wide))
            case 6: values.append(.varI(Bool.random(using: &rng) ? Int64(bitPattern: wide) : -Int64(wide >> 1)))
            default: values.append(.bytes(randomBytes(Int(wide % 40), &rng)))
            }
        }
        values.shuffle(using: &rng)
        return values
    }

    @Test func binaryRoundTripsRandomValues() throws {
        var rng = SplitMix64(seed: 3)
        let values = Self.randomValues(2000, &rng)
        let bytes = Self.write(values)
        #expect(try Self.read(bytes, shape: values) == values)
    }

    @Test func binaryEncodingIsLittleEndianAndLEB128() {
        var w = BinaryWriter()
        w.write(UInt32(0x0102_0304))
        w.writeVarUInt(300)
        w.writeVarInt(-1)
        w.writeVarInt(1)
        w.writeVarUInt(UInt64.max)
        w.write(bytes: [9, 8])
        #expect(w.bytes == [4, 3, 2, 1, 0xAC, 0x02, 0x01, 0x02]
            + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01] + [2, 9, 8])
    }

    @Test func readerThrowsOnEveryTruncation() throws {
        var rng = SplitMix64(seed: 4)
        let values = Self.randomValues(60, &rng)
        let bytes = Self.write(values)
        for length in 0..<bytes.count {
            #expect(throws: CodecError.self, "prefix \(length)") {
                _ = try Self.read(Array(bytes.prefix(length)), shape: values)
            }
        }
        var empty = BinaryReader([])
        #expect(throws: CodecError.truncated) { try empty.readUInt8() }
        #expect(throws: CodecError.truncated) { try empty.readUInt64() }
        #expect(throws: CodecError.truncated) { try empty.readVarUInt() }
        var short = BinaryReader([1, 2, 3])
        #expect(throws: CodecError.truncated) { try short.readUInt32() }
        #expect(try short.readUInt16() == 0x0201)  // a failed read consumes nothing
    }

    @Test func readerRejectsOverlongVarintsAndLengths() {
        var eleven = BinaryReader([UInt8](repeating: 0x80, count: 10) + [0x00])
        #expect(throws: CodecError.self) { try eleven.readVarUInt() }
        var overflow = BinaryReader([UInt8](repeating: 0xFF, count: 9) + [0x02])
        #expect(throws: CodecError.corrupt("varint overflows 64 bits")) { try overflow.readVarUInt() }
        var huge = BinaryReader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 1, 2])
        #expect(throws: CodecError.self) { try huge.readBytes() }
        var long = BinaryReader([5, 1, 2, 3])
        #expect(throws: CodecError.corrupt("length prefix 5 exceeds the 3 remaining bytes")) { try long.readBytes() }
        var negative = BinaryReader([1])
        #expect(throws: CodecError.self) { try negative.readRaw(count: -1) }
    }

    // MARK: LZ4Frame

    @Test func lz4RoundTrips() throws {
        var rng = SplitMix64(seed: 5)
        let cases: [[UInt8]] = [
            [],
            [42],
            randomBytes(100_000, &rng),
            statePayload(200_000, seed: 6),
        ]
        for input in cases {
            let compressed = try LZ4Frame.compress(input)
            #expect(try LZ4Frame.decompress(compressed, expectedSize: input.count) == input)
        }
    }

    @Test func lz4HighlyCompressibleTenMegabytes() throws {
        let input = (0..<10_000_000).map { UInt8(truncatingIfNeeded: ($0 / 1000) % 7) }
        let compressed = try LZ4Frame.compress(input)
        #expect(compressed.count < input.count / 100)
        #expect(try LZ4Frame.decompress(compressed, expectedSize: input.count) == input)
    }

    @Test func lz4RejectsBadInput() throws {
        var rng = SplitMix64(seed: 7)
        let input = statePayload(5000, seed: 8)
        let compressed = try LZ4Frame.compress(input)

        #expect(throws: CodecError.truncated) { try LZ4Frame.decompress([], expectedSize: 0) }
        #expect(throws: CodecError.self) { try LZ4Frame.decompress(randomBytes(1000, &rng), expectedSize: 5000) }
        #expect(throws: CodecError.self) { try LZ4Frame.decompress(compressed, expectedSize: 4999) }
        #expect(throws: CodecError.self) { try LZ4Frame.decompress(compressed, expectedSize: 5001) }
        #expect(throws: CodecError.self) { try LZ4Frame.decompress(compressed, expectedSize: 0) }
        #expect(throws: CodecError.self) { try LZ4Frame.decompress(compressed, expectedSize: -1) }
        #expect(throws: CodecError.self) { try LZ4Frame.decompress(compressed + [0], expectedSize: 5000) }
        for length in 0..<compressed.count {
            #expect(throws: CodecError.self, "prefix \(length)") {
                try LZ4Frame.decompress(Array(compressed.prefix(length)), expectedSize: input.count)
            }
        }
    }

    // MARK: SnapshotEnvelope

    /// Rewrites the version field and re-seals the header CRC, as a future writer would.
    static func withVersion(_ version: UInt16, _ sealed: [UInt8]) -> [UInt8] {
        var copy = sealed
        copy[4] = UInt8(version & 0xFF)
        copy[5] = UInt8(version >> 8)
        let crc = CRC32C.checksum(Array(copy[0..<20]))
        for i in 0..<4 { copy[20 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        return copy
    }

    @Test func envelopeRoundTrips() throws {
        var rng = SplitMix64(seed: 9)
        for payload in [[], [1], statePayload(2048, seed: 10), randomBytes(50_000, &rng), statePayload(1_000_000, seed: 11)] {
            let sealed = try SnapshotEnvelope.seal(payload)
            #expect(Array(sealed.prefix(4)) == Array("SLST".utf8))
            #expect(try SnapshotEnvelope.open(sealed) == payload)
        }
    }

    @Test func envelopeDetectsEverySingleByteFlip() throws {
        let payload = statePayload(2048, seed: 12)
        let sealed = try SnapshotEnvelope.seal(payload)
        var undetected: [String] = []
        for position in sealed.indices {
            for mask: UInt8 in [0x01, 0xFF] {
                var damaged = sealed
                damaged[position] ^= mask
                do {
                    let opened = try SnapshotEnvelope.open(damaged)
                    undetected.append("byte \(position) ^ \(mask): returned \(opened == payload ? "the payload" : "WRONG bytes")")
                } catch is CodecError {
                    continue
                } catch {
                    undetected.append("byte \(position) ^ \(mask): unexpected error \(error)")
                }
            }
        }
        #expect(undetected.isEmpty, "\(undetected.count) flips undetected: \(undetected.prefix(10))")
    }

    @Test func envelopeRejectsEveryTruncation() throws {
        let sealed = try SnapshotEnvelope.seal(statePayload(2048, seed: 13))
        for length in 0..<sealed.count {
            #expect(throws: CodecError.self, "prefix \(length)") {
                try SnapshotEnvelope.open(Array(sealed.prefix(length)))
            }
        }
        #expect(throws: CodecError.self) { try SnapshotEnvelope.open(sealed + [0]) }
    }

    @Test func envelopeRejectsUnsupportedVersion() throws {
        let sealed = try SnapshotEnvelope.seal(statePayload(100, seed: 14))
        #expect(throws: CodecError.unsupportedVersion(2)) { try SnapshotEnvelope.open(Self.withVersion(2, sealed)) }
        #expect(throws: CodecError.unsupportedVersion(0)) { try SnapshotEnvelope.open(Self.withVersion(0, sealed)) }
        #expect(try SnapshotEnvelope.open(Self.withVersion(1, sealed)).count == 100)
    }

    @Test func envelopeRejectsImplausibleLengthsBeforeAllocating() throws {
        let sealed = try SnapshotEnvelope.seal([1, 2, 3])
        // A length over 1 GiB (with a valid header CRC, so only the limit can stop it).
        var forged = sealed
        for i in 0..<8 { forged[8 + i] = i == 7 ? 0x01 : 0 }  // 2^56
        forged = Self.withVersion(1, forged)
        #expect(throws: CodecError.corrupt("payload length 72057594037927936 exceeds the 1073741824-byte limit")) {
            try SnapshotEnvelope.open(forged)
        }
        // Within the limit, but far more than a few bytes of LZ4 can expand to.
        forged = sealed
        for i in 0..<8 { forged[8 + i] = i == 3 ? 0x10 : 0 }  // 256 MiB
        forged = Self.withVersion(1, forged)
        #expect(throws: CodecError.self) { try SnapshotEnvelope.open(forged) }
        #expect(throws: CodecError.corrupt("bad magic: not a snapshot envelope")) {
            try SnapshotEnvelope.open(Array("NOPE".utf8) + sealed.dropFirst(4))
        }
    }

    @Test func errorDescriptionsAreReadable() {
        #expect(CodecError.truncated.description == "codec: input truncated")
        #expect("\(CodecError.unsupportedVersion(7))" == "codec: unsupported format version 7")
        #expect(CodecError.corrupt("x").description.contains("x"))
    }
}

import SluiceCore
import Testing

@Suite struct PartitioningTests {
    /// Kafka's own test vectors (clients' UtilsTest.testMurmur2) and librdkafka's.
    @Test(arguments: [
        ("21", -973_932_308), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536),
        ("a-little-bit-longer-string", -1_486_304_829), ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
        ("abc", 479_470_107), ("1", -1_993_445_489), ("12", 126_087_238), ("123", -267_702_483),
        ("1234", -1_614_185_708), ("12345", -1_188_365_604), ("kafka", -798_503_068),
    ])
    func murmur2MatchesKafka(text: String, expected: Int) {
        #expect(Murmur2.hash(Array(text.utf8)) == Int32(expected))
    }

    @Test func murmur2PartitionIsThePositiveHashModuloP() {
        let p = KeyPartitioner(.murmur2, partitions: 12)
        // -973932308 & 0x7fffffff = 1173551340; % 12 = 0
        #expect(p.partition(of: [.string("21")]) == Int((UInt32(bitPattern: -973_932_308) & 0x7fff_ffff) % 12))
        #expect(p.partition(of: [.string("21")]) == 1_173_551_340 % 12)
    }

    @Test func keyBytesFollowTheContract() {
        var bytes: [UInt8] = []
        #expect(KeyBytes.append([.string("cust-1"), .int64(-5), .uint64(18_446_744_073_709_551_615), .bool(true),
                                 .decimal(-5, scale: 2), .timestamp(1_767_225_600_000)], to: &bytes))
        #expect(String(decoding: bytes, as: UTF8.self)
            == "cust-1\u{1f}-5\u{1f}18446744073709551615\u{1f}true\u{1f}-0.05\u{1f}1767225600000")
        var none: [UInt8] = []
        #expect(!KeyBytes.append([.string("a"), .null], to: &none))
        #expect(KeyPartitioner(.murmur2, partitions: 4).partition(of: [.null]) == nil)
    }

    @Test func moduloIsEuclidean() {
        let p = KeyPartitioner(.modulo, partitions: 8)
        #expect(p.partition(of: [.int64(-1)]) == 7)
        #expect(p.partition(of: [.int64(-8)]) == 0)
        #expect(p.partition(of: [.int64(Int64.min)]) == KeyPartitioner.euclidean(Int64.min, 8))
        #expect(p.partition(of: [.int64(Int64.min)]) == 0)
        #expect(p.partition(of: [.uint64(UInt64.max)]) == Int(UInt64.max % 8))
        #expect(p.partition(of: [.string("x")]) == nil)
    }
}

@Suite struct DecimalAndTimeTextTests {
    @Test func decimalsFormatCanonically() {
        #expect(DecimalText.format(12340, scale: 2) == "123.40")
        #expect(DecimalText.format(-5, scale: 2) == "-0.05")
        #expect(DecimalText.format(0, scale: 3) == "0.000")
        #expect(DecimalText.format(7, scale: 0) == "7")
        #expect(DecimalText.format(Int64.min, scale: 2) == "-92233720368547758.08")
    }

    @Test func decimalsParseExactly() {
        func parse(_ s: String, _ scale: Int, pg: Bool = false) -> Result<Int64, DecimalText.Failure> {
            DecimalText.parse(Array(s.utf8), scale: scale, trailingZerosFree: pg)
        }
        #expect(parse("12.34", 2) == .success(1234))
        #expect(parse("12.3", 2) == .success(1230))
        #expect(parse("12", 2) == .success(1200))
        #expect(parse("-0.05", 2) == .success(-5))
        #expect(parse("1.234e1", 2) == .success(1234))
        #expect(parse("12.345", 2) == .failure(.tooPrecise))
        #expect(parse("12.340", 2) == .failure(.tooPrecise))
        #expect(parse("12.340", 2, pg: true) == .success(1234))
        #expect(parse("12.345", 2, pg: true) == .failure(.tooPrecise))
        #expect(parse("1.", 2) == .failure(.syntax))
        #expect(parse(".5", 2) == .failure(.syntax))
        #expect(parse("abc", 2) == .failure(.syntax))
        #expect(parse("", 2) == .failure(.syntax))
        #expect(parse("92233720368547758.07", 2) == .success(Int64.max))
        #expect(parse("92233720368547758.08", 2) == .failure(.outOfRange))
        #expect(parse("-92233720368547758.08", 2) == .success(Int64.min))
    }

    @Test func timestampsRoundTrip() {
        #expect(Timestamps.rfc3339(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamps.rfc3339(milliseconds: 1_767_225_600_123) == "2026-01-01T00:00:00.123Z")
        #expect(Timestamps.rfc3339(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
        #expect(Timestamps.parse(Array("2026-01-01T00:00:00.123Z".utf8)) == 1_767_225_600_123)
        #expect(Timestamps.parse(Array("2026-01-01T01:30:00+01:30".utf8)) == 1_767_225_600_000)
        #expect(Timestamps.parse(Array("2025-12-31T23:00:00-01:00".utf8)) == 1_767_225_600_000)
        #expect(Timestamps.parse(Array("2026-01-01T00:00:00.1239Z".utf8)) == 1_767_225_600_123)
        #expect(Timestamps.parse(Array("1969-12-31T23:59:59.999Z".utf8)) == -1)
        #expect(Timestamps.parse(Array("2026-02-29T00:00:00Z".utf8)) == nil)
        #expect(Timestamps.parse(Array("2024-02-29T00:00:00Z".utf8)) != nil)
        #expect(Timestamps.parse(Array("2026-01-01T00:00:00".utf8)) == nil)  // no offset
        #expect(Timestamps.parse(Array("2026-01-01 00:00:00.5+00".utf8), style: .postgres) == 1_767_225_600_500)
        #expect(Timestamps.parse(Array("2026-01-01 05:30:00+05:30".utf8), style: .postgres) == 1_767_225_600_000)
        #expect(Timestamps.parse(Array("2026-01-01 00:00:00+00".utf8)) == nil)  // PostgreSQL's ±HH is not RFC 3339
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let ms = Int64.random(in: -62_135_596_800_000...253_402_300_799_999, using: &rng)  // years 1...9999
            #expect(Timestamps.parse(Array(Timestamps.rfc3339(milliseconds: ms).utf8)) == ms)
        }
    }
}

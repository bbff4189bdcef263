@testable import SluiceCore
import Testing

@Suite struct LineDecoderTests {
    let decoder = LineDecoder(schema: .bids, timeIndex: 3)

    /// Decodes `text` alone, and again followed by `\n` and another line (which the decoder may
    /// read ahead into but must not take); both must agree.
    func decode(_ text: String) -> (values: [Int64], failure: DecodeFailure?) {
        var values = [Int64](repeating: 0, count: 4)
        let bytes = Array(text.utf8)
        let failure = values.withUnsafeMutableBufferPointer { v in
            bytes.withUnsafeBytes { decoder.decode($0, into: v.baseAddress!) }
        }
        var followedValues = [Int64](repeating: 0, count: 4)
        let followed = bytes + Array("\n12345678,987654321,5,1767225600000\n".utf8)
        let followedFailure = followedValues.withUnsafeMutableBufferPointer { v in
            followed.withUnsafeBytes { raw in
                decoder.decode(UnsafeRawBufferPointer(rebasing: raw[0..<bytes.count]), readable: raw.count, into: v.baseAddress!)
            }
        }
        #expect(followedFailure == failure, "\(text.debugDescription) decoded differently with bytes after it")
        if failure == nil { #expect(followedValues == values) }
        return (values, failure)
    }

    @Test func decodesValidLines() {
        #expect(decode("7,12,300,1767225600000").failure == nil)
        #expect(decode("7,12,300,1767225600000").values == [7, 12, 300, 1_767_225_600_000])
        #expect(decode("18446744073709551615,0,1,-5").values == [-1, 0, 1, -5])  // uint64 max as its bit pattern
        #expect(decode("0,0,1,-4611686018427387904").failure == nil)  // -2^62: the least time allowed
    }

    @Test func refusesMalformedLines() {
        let cases: [(String, DecodeFailure)] = [
            ("", .notAnInteger(field: 0)),
            ("1,2,3", .fieldCount(expected: 4, got: 3)),
            ("1,2,3,4,5", .fieldCount(expected: 4, got: 5)),
            ("1,2,3,4,", .fieldCount(expected: 4, got: 5)),
            ("1,,3,4", .notAnInteger(field: 1)),
            ("1,x,3,4", .notAnInteger(field: 1)),
            ("1,2,+3,4", .notAnInteger(field: 2)),
            ("1,2,3,4\r", .notAnInteger(field: 3)),
            (" 1,2,3,4", .notAnInteger(field: 0)),
            ("-1,2,3,4", .notAnInteger(field: 0)),  // uint64: no sign
            ("1,2,0,4", .belowMinimum(field: 2)),
            ("1,2,-7,4", .belowMinimum(field: 2)),
            ("18446744073709551616,2,3,4", .notAnInteger(field: 0)),  // 2^64
            ("1,2,9223372036854775808,4", .notAnInteger(field: 2)),  // Int64.max + 1
            ("1,2,3,123456789012345678901234567890", .notAnInteger(field: 3)),
            ("1,2,3,4611686018427387905", .timeOutOfRange),
            ("1,2,3,-", .notAnInteger(field: 3)),
        ]
        for (line, expected) in cases {
            #expect(decode(line).failure == expected, "line \(line.debugDescription)")
        }
    }

    @Test func eightDigitShortcutAgreesWithByteByByte() {
        var rng = SplitMix64(seed: 3)
        for _ in 0..<2_000 {
            let value = rng.next() >> (rng.next() % 64)
            let text = "\(value),1,1,\(Int64(bitPattern: rng.next()) >> 2)"
            let result = decode(text)
            #expect(result.failure == nil)
            #expect(UInt64(bitPattern: result.values[0]) == value)
        }
        #expect(LineDecoder.nonDigitMask(UInt64(littleEndian: 0x3837_3635_3433_3231)) == 0)
        #expect(LineDecoder.eightDigitsValue(0x3837_3635_3433_3231) == 12_345_678)
        #expect(LineDecoder.nonDigitMask(0x3837_3635_2C33_3231) == 0x0000_0000_8000_0000)  // a comma inside, byte 3
    }
}

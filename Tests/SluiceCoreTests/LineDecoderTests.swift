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

    @Test func crlfLineEndsAreLineEnds() {
        // Long enough for the plain-line path (8 bytes before a line, 32 after its start).
        let text = Array("12345678,1,2,3\r\n7,12,300,1767225600000\r\n7,12,300,1767225600001\r\r\n1,2,3,4\r".utf8) + Array(repeating: 10, count: 40)
        var values = [Int64](repeating: 0, count: 4)
        var results: [(end: Int, failure: DecodeFailure?, values: [Int64])] = []
        text.withUnsafeBytes { raw in
            values.withUnsafeMutableBufferPointer { v in
                var start = 0
                for _ in 0..<4 {
                    let (end, failure) = decoder.decodeLine(raw.baseAddress!, from: start, count: raw.count, into: v.baseAddress!)
                    results.append((end, failure, Array(v)))
                    start = end + 1
                }
            }
        }
        #expect(results[0].failure == nil && results[0].values == [12345678, 1, 2, 3] && results[0].end == 15)
        #expect(results[1].failure == nil && results[1].values == [7, 12, 300, 1_767_225_600_000])
        #expect(results[2].failure == .notAnInteger(field: 3), "two \\r: only one belongs to the line end")
        #expect(results[3].failure == nil && results[3].values == [1, 2, 3, 4], "\\r\\n after the last field")
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

    /// `decodeLine` (the engine's path: the plain-line shortcut, the one-pass scan, the careful
    /// fallback) against `decode` on its own line, for random lines (valid ones of every digit
    /// count, and mutated ones: signs, empty fields, stray bytes, CR, too many or few fields)
    /// packed into buffers at every alignment, so the reads before and after a line are exercised.
    @Test func decodeLineAgreesWithDecode() {
        var rng = SplitMix64(seed: 11)
        func digits(_ count: Int) -> String {
            String((0..<count).map { i in Character(String(i == 0 && count > 1 ? 1 + rng.next() % 9 : rng.next() % 10)) })
        }
        func randomLine() -> String {
            // Half of them shaped like the workload's (short ids, a 13-digit time), half any length.
            var fields = rng.next() % 2 == 0
                ? [digits(1 + Int(rng.next() % 6)), digits(1 + Int(rng.next() % 7)), digits(1 + Int(rng.next() % 6)), digits(13)]
                : (0..<4).map { _ in digits(1 + Int(rng.next() % (rng.next() % 4 == 0 ? 20 : 14))) }
            switch rng.next() % 8 {
            case 0: fields[Int(rng.next() % 4)] = "-" + fields[Int(rng.next() % 4)]
            case 1: fields[Int(rng.next() % 4)] = ""
            case 2: fields.append(digits(3))
            case 3: fields.removeLast()
            default: break
            }
            var line = Array(fields.joined(separator: ",").utf8)
            if rng.next() % 6 == 0, !line.isEmpty {  // a stray byte anywhere
                line[Int(rng.next() % UInt64(line.count))] = [32, 43, 45, 44, 120, 13, 0, 255][Int(rng.next() % 8)]
            }
            if rng.next() % 20 == 0 { line.append(13) }
            return String(decoding: line, as: UTF8.self)
        }
        var checked = 0, plain = 0
        for _ in 0..<300 {
            let lines = (0..<(1 + Int(rng.next() % 12))).map { _ in Array(randomLine().utf8).filter { $0 != 10 } }
            var buffer = [UInt8](repeating: 10, count: Int(rng.next() % 10))  // empty lines in front shift the alignment
            let first = buffer.count
            for line in lines { buffer += line + [10] }
            if rng.next() % 2 == 0 { buffer.removeLast() }  // the data may end without a line end
            var start = first
            var values = [Int64](repeating: 0, count: 4), expectedValues = [Int64](repeating: 0, count: 4)
            buffer.withUnsafeBytes { raw in
                let base = raw.baseAddress!
                for line in lines where start < raw.count {
                    let got = values.withUnsafeMutableBufferPointer { decoder.decodeLine(base, from: start, count: raw.count, into: $0.baseAddress!) }
                    // One `\r` before the line's `\n` belongs to the line end (CRLF).
                    let content = line.last == 13 && start + line.count < raw.count ? line.count - 1 : line.count
                    let expectedFailure = expectedValues.withUnsafeMutableBufferPointer { v in
                        decoder.decode(UnsafeRawBufferPointer(rebasing: raw[start..<(start + content)]), into: v.baseAddress!)
                    }
                    let text = String(decoding: line, as: UTF8.self).debugDescription
                    #expect(got.end == start + line.count, "\(text): line end")
                    #expect(got.failure == expectedFailure, "\(text): decodeLine \(String(describing: got.failure)), decode \(String(describing: expectedFailure))")
                    if expectedFailure == nil { #expect(values == expectedValues, "\(text): values") }
                    let plainValues = UnsafeMutablePointer<Int64>.allocate(capacity: 4)
                    if decoder.decodePlainLine(base, from: start, count: raw.count, into: plainValues) != nil { plain += 1 }
                    plainValues.deallocate()
                    checked += 1
                    start += line.count + 1
                }
            }
        }
        #expect(checked > 1_500 && plain > 250, "\(checked) lines checked, \(plain) by the plain-line path")
    }
}

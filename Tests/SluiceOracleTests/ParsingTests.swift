import Testing
import SluiceCore
@testable import SluiceOracle

@Suite struct ParsingTests {
    let pipeline = bidsPipeline(.tumbling(sizeMs: 10_000),
                                [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.max, "price")])

    @Test func malformedLinesOfEveryKind() {
        let lines = [
            "1,2,3",                            // 0
            "1,2,3,4,5",                        // 1
            "1,x,3,4",                          // 2
            "1,2,+5,4",                         // 3
            "",                                 // 4
            "1,2,3,4\r",                        // 5: valid, a CRLF line end
            "1,2,0,4",                          // 6
            "1,2,-5,4",                         // 7
            "18446744073709551616,2,3,4",       // 8: UInt64.max + 1
            "18446744073709551615,2,3,4",       // 9: UInt64.max, valid
            "1, 2,3,4",                         // 10
            "-1,2,3,4",                         // 11: a uint64 takes no sign
            "1,2,3,9223372036854775808",        // 12: Int64.max + 1
            "1,2,3,-",                          // 13
            "1,,3,4",                           // 14
            "1,2,3,4",                          // 15: valid
            "garbage line 16",                  // 16
            "1,2,1,-0",                         // 17: valid, time 0
            "1,2,3,1e3",                        // 18
        ]
        let result = Oracle.run(pipeline: pipeline, partition: 3, text: text(lines))
        let expected: [(Int, String)] = [
            (0, "expected 4 fields, got 3"),
            (1, "expected 4 fields, got 5"),
            (2, "field 'bidder' is not an integer"),
            (3, "field 'price' is not an integer"),
            (4, "expected 4 fields, got 1"),
            (6, "field 'price' must be >= 1"),
            (7, "field 'price' must be >= 1"),
            (8, "field 'auction' is not an integer"),
            (10, "field 'bidder' is not an integer"),
            (11, "field 'auction' is not an integer"),
            (12, "field 'event_time_ms' is not an integer"),
            (13, "field 'event_time_ms' is not an integer"),
            (14, "field 'bidder' is not an integer"),
            (16, "expected 4 fields, got 1"),
            (18, "field 'event_time_ms' is not an integer"),
        ]
        #expect(result.deadLetters == expected.map { DeadLetter(partition: 3, offset: $0.0, reason: $0.1) })
        #expect(result.rows == ["0,1,3,7,3", "0,18446744073709551615,1,3,3"])
        #expect(result.late.isEmpty)
    }

    @Test func crlfLineEndsAreLineEnds() {
        // One `\r` before `\n` ends the line, as in the engine; any other `\r` stays in the line.
        let crlf: [UInt8] = Array("1,2,3,4\r\n5,2,3,6\r\n7,2,3,8\r\r\n9,2,3,10\r".utf8)
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: crlf)
        #expect(result.rows == ["0,1,1,3,3", "0,5,1,3,3"])
        #expect(result.deadLetters.map(\.offset) == [2, 3])
    }

    @Test func firstBadFieldGivesTheReason() {
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text(["x,y,0,z"]))
        #expect(result.deadLetters == [DeadLetter(partition: 0, offset: 0, reason: "field 'auction' is not an integer")])
    }

    @Test func extremeIntegersParseAndExtremeTimesAreMalformed() {
        // Any int64 parses, but an event time beyond ±2^62 ms makes the line malformed (the
        // format's rule, so that window arithmetic never overflows in any implementation).
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            "007,0,1,-9223372036854775808",
            "0,18446744073709551615,9223372036854775807,9223372036854775807",
            "0,1,9223372036854775807,4611686018427387904",
            "0,1,5,-4611686018427387905",
        ]))
        #expect(result.deadLetters.map(\.offset) == [0, 1, 3])
        #expect(result.late.isEmpty)
        #expect(result.rows == ["4611686018427380000,0,1,9223372036854775807,9223372036854775807"])
    }

    @Test func malformedLinesLeaveTheWatermarkAlone() {
        // A malformed line with a large time does not move W, so the next event is not late.
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            "1,1,1,50000",
            "1,1,0,900000",   // price below minimum: dead letter, W stays 48000
            "1,1,2,45000",    // [40000, 50000), end 50000 > 48000
        ]))
        #expect(result.rows == ["40000,1,1,2,2", "50000,1,1,1,1"])
        #expect(result.late.isEmpty)
        #expect(result.deadLetters.map(\.offset) == [1])
    }

    @Test func lastLineWithoutNewlineCounts() {
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: Array("1,2,3,4\n1,2,5,6".utf8))
        #expect(result.rows == ["0,1,2,8,5"])
        #expect(result.deadLetters.isEmpty)

        let malformedLast = Oracle.run(pipeline: pipeline, partition: 0, text: Array("1,2,3,4\nbad".utf8))
        #expect(malformedLast.deadLetters == [DeadLetter(partition: 0, offset: 1, reason: "expected 4 fields, got 1")])
    }

    @Test func trailingNewlineMakesNoEmptyLineButBlankLinesCount() {
        #expect(Oracle.run(pipeline: pipeline, partition: 0, text: Array("1,2,3,4\n".utf8)).deadLetters.isEmpty)
        let blank = Oracle.run(pipeline: pipeline, partition: 0, text: Array("1,2,3,4\n\n1,2,3,5\n".utf8))
        #expect(blank.deadLetters == [DeadLetter(partition: 0, offset: 1, reason: "expected 4 fields, got 1")])
        #expect(blank.rows == ["0,1,2,6,3"])
        #expect(Oracle.run(pipeline: pipeline, partition: 0, text: []) == OracleResult())
        #expect(Oracle.run(pipeline: pipeline, partition: 0, text: Array("\n".utf8)).deadLetters.map(\.offset) == [0])
    }
}

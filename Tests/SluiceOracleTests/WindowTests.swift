// Hand-computed examples. Each comment follows the watermark W (max time - 2000) event by event.

import Testing
import SluiceCore
@testable import SluiceOracle

@Suite struct TumblingTests {
    let pipeline = bidsPipeline(.tumbling(sizeMs: 10_000),
                                [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.max, "price")])

    @Test func boundariesLatenessAndFlush() {
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            "1,7,100,10000",  // 0: exactly on a boundary: window [10000, 20000). W = 8000
            "1,7,50,9999",    // 1: [0, 10000), end 10000 > Wb 8000: out of order, not late. W = 8000
            "2,7,30,19999",   // 2: key 2 [10000, 20000). W = 17999: fires [0, 10000) of key 1
            "1,7,20,5000",    // 3: [0, 10000), end 10000 <= Wb 17999: late
            "1,7,5,22000",    // 4: [20000, 30000). W = 20000: fires [10000, 20000) of keys 1 and 2
            "1,7,6,19999",    // 5: [10000, 20000), end 20000 == Wb 20000: late
            "1,7,9,20000",    // 6: [20000, 30000). W = 20000
        ]))                   // end of input: [20000, 30000) of key 1 fires
        #expect(result.rows == [
            "0,1,1,50,50",
            "10000,1,1,100,100",
            "10000,2,1,30,30",
            "20000,1,2,14,9",
        ])
        #expect(result.late == late(3, 5))
        #expect(result.deadLetters.isEmpty)
    }

    @Test func windowFiresWhenWatermarkReachesItsEnd() {
        // One ms short of the end is not enough; a late event then still joins the window.
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            "1,1,1,100",      // [0, 10000). W = -1900
            "2,1,1,11999",    // W = 9999: [0, 10000) stays open
            "1,1,2,9000",     // end 10000 > Wb 9999: joins [0, 10000)
            "2,1,1,12000",    // W = 10000: [0, 10000) fires
            "1,1,4,9001",     // end 10000 <= Wb 10000: late
        ]))
        #expect(result.rows == ["0,1,2,3,2", "10000,2,2,2,1"])
        #expect(result.late == late(4))
    }

    @Test func negativeTimesUseFloorAlignment() {
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            "3,1,4,-10001",   // [-20000, -10000). W = -12001
            "3,1,1,-1",       // [-10000, 0). W = -2001: fires [-20000, -10000)
            "3,1,2,-10000",   // [-10000, 0), on its boundary
            "3,1,8,0",        // [0, 10000)
        ]))
        #expect(result.rows == ["-10000,3,2,3,2", "-20000,3,1,4,4", "0,3,1,8,8"])
        #expect(result.late.isEmpty)
    }

    @Test func averageAndASumThatWouldOverflow() {
        let pipeline = bidsPipeline(.tumbling(sizeMs: 10_000), [
            AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.min, "price"),
            AggregateSpec(.max, "price"), AggregateSpec(.avg, "price"),
        ])
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            "1,1,1,10", "1,1,2,20",                      // avg 1.5
            "2,1,3,30",                                  // avg 3.0 (Swift's description keeps ".0")
            "3,1,1,40", "3,1,1,50", "3,1,2,60",          // avg 4/3
            "4,1,9223372036854775807,70", "4,1,2,80",    // the sum would pass Int64.max: a dead letter
        ]))
        #expect(result.rows == [
            "0,1,2,3,1,2,1.5",
            "0,2,1,3,3,3,3.0",
            "0,3,3,4,1,2,1.3333333333333333",
            "0,4,1,9223372036854775807,9223372036854775807,9223372036854775807,9.223372036854776e+18",
        ])
        #expect(result.deadLetters == [DeadLetter(partition: 0, offset: 7, reason: "overflow: sum_price of window 0")])
    }

    @Test func aggregatesFollowSpecOrderAndOtherFields() {
        // Columns in the order of the spec, whatever it is; min/max of another int64 field.
        let schema = Schema(fields: [
            Field(name: "id", type: .uint64), Field(name: "ts", type: .int64),
            Field(name: "a", type: .int64), Field(name: "b", type: .int64),
        ])
        let pipeline = Pipeline(schema: schema, keyField: "id", timeField: "ts",
                                watermark: WatermarkSpec(maxOutOfOrdernessMs: 0), window: .tumbling(sizeMs: 100),
                                aggregates: [AggregateSpec(.max, "b"), AggregateSpec(.count), AggregateSpec(.min, "a")])
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            "5,10,-3,7", "5,20,4,-8", "5,100,0,0", "5,99,1,1",  // W = 100 at the third: the fourth is late
        ]))
        #expect(pipeline.outputColumns == ["window_start_ms", "id", "max_b", "count", "min_a"])
        #expect(result.rows == ["0,5,7,2,-3", "100,5,0,1,0"])
        #expect(result.late == late(3))
    }
}

@Suite struct SlidingTests {
    let pipeline = bidsPipeline(.sliding(sizeMs: 10_000, slideMs: 2_000), [AggregateSpec(.count)])

    @Test func partlyLateAndWhollyLateEvents() {
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            "1,1,1,10000",  // 0: starts 2000..10000 (ends 12000..20000). W = 8000
            "1,1,1,15000",  // 1: starts 6000..14000. W = 13000: fires start 2000 (end 12000)
            "1,1,1,5000",   // 2: starts -4000..4000 (ends 6000..14000); only end 14000 > Wb 13000: joins start 4000 only
            "1,1,1,1000",   // 3: starts -8000..0 (ends 2000..10000), all <= Wb 13000: late
            "2,1,1,16000",  // 4: starts 8000..16000. W = 14000: fires start 4000 (events 0 and 2)
        ]))
        let expected = [
            "2000,1,1", "4000,1,2", "6000,1,2", "8000,1,2", "10000,1,2", "12000,1,1", "14000,1,1",
            "8000,2,1", "10000,2,1", "12000,2,1", "14000,2,1", "16000,2,1",
        ]
        #expect(result.rows == expected.sorted())
        #expect(result.late == late(3))
    }

    @Test func eachEventIsInSizeOverSlideWindows() {
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text(["9,1,1,-1"]))
        #expect(result.rows == ["-10000,9,1", "-2000,9,1", "-4000,9,1", "-6000,9,1", "-8000,9,1"])
    }
}

@Suite struct SessionTests {
    let pipeline = bidsPipeline(.session(gapMs: 5_000), [AggregateSpec(.count), AggregateSpec(.sum, "price")])

    @Test func bridgingTouchingAndLate() {
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            "1,1,20,8000",    // 0: key 1 [8000, 13000). W = 6000
            "1,1,10,1500",    // 1: key 1 [1500, 6500): apart from [8000, 13000); end 6500 > Wb 6000. W = 6000
            "1,1,5,4000",     // 2: [4000, 9000) overlaps both: one session [1500, 13000), count 3, sum 35
            "2,1,1,500",      // 3: key 2 [500, 5500): end <= Wb 6000: late
            "1,1,1,-4000",    // 4: [-4000, 1000) does not reach [1500, 13000); end 1000 <= 6000: late, nothing changes
            "3,1,1,20000",    // 5: key 3 [20000, 25000). W = 18000: fires key 1's [1500, 13000)
            "3,1,2,25000",    // 6: [25000, 30000) touches (start == other end): [20000, 30000). W = 23000
            "3,1,4,15000",    // 7: [15000, 20000), end 20000 <= Wb 23000 alone, but it touches
                              //    [20000, 30000) (end == other start): merged [15000, 30000) is not late
            "4,1,1,40000",    // 8: key 4 [40000, 45000). W = 38000: fires key 3's [15000, 30000)
            "4,1,1,45001",    // 9: [45001, 50001): 1 ms apart, a second session. W = 43001
        ]))                   // end of input: both sessions of key 4 fire
        #expect(result.rows == [
            "1500,1,3,35",
            "15000,3,3,7",
            "40000,4,1,1",
            "45001,4,1,1",
        ])
        #expect(result.late == late(3, 4))
    }

    @Test func sessionFiresWhenWatermarkReachesItsEnd() {
        let result = Oracle.run(pipeline: pipeline, partition: 0, text: text([
            "1,1,1,0",       // [0, 5000)
            "2,1,1,6999",    // W = 4999: key 1 stays open
            "1,1,2,1000",    // [1000, 6000) merges: [0, 6000)
            "2,1,1,8000",    // W = 6000: [0, 6000) fires
            "1,1,4,500",     // [500, 5500): no open session of key 1; end <= Wb 6000: late
            "1,1,16,1000",   // [1000, 6000): end == Wb 6000: late
            "1,1,8,3000",    // [3000, 8000): a new session (the fired one is gone)
        ]))
        #expect(result.rows == ["0,1,2,3", "3000,1,1,8", "6999,2,2,2"])
        #expect(result.late == late(4, 5))
    }
}

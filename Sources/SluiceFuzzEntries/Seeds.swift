import SluiceCore
import SluiceProtocol
import SwiftProtobuf

// Seed inputs, one small valid case per target (scripts/fuzz writes them into an empty corpus;
// the fuzzer mutates from there).

extension FuzzTargets {
    public static func seeds(for name: String) -> [[UInt8]] {
        switch name {
        case "csv":
            return [[4, 0] + snapshotText(6),
                    [0, 1] + Array("o1,c1,gold,12.50,3,4,1.5,true,1000\no2,c2,,\"0.99\",-1,,,false,1970-01-01T00:00:02Z\n\"a\"\"b\",c1,,1.00,,,,,\n".utf8),
                    [5, 2] + Array("id;customer;amount;ts\no1;c1;1.00;5\n".utf8)]
        case "json":
            return [[0] + snapshotText(3),
                    [2] + Array(#"{"id":"\u00e9","customer":{"id":"c","tier":null},"amount":1e2,"ts":"2026-12-01T10:00:00.5+01:00","f":-0.0,"u":18446744073709551615}"#.utf8)]
        case "expression":
            return ["s = 'paid' and d > 10.00", "i + u * 2 - length(s) % 3", "coalesce(i, 0) in (1, 2, 3) or b is not null",
                    "lower(\"odd name\") <> 'x' and not (f >= 1.5e3)", "e / d + t", "-i", "upper(s) || 'x'"].map { Array($0.utf8) }
        case "jobspec":
            return [Array("window: {kind: tumbling, size_ms: 500}\naggregates: [count, {avg: price}]\n".utf8)]
        case "snapshot":
            return snapshotSeeds()
        case "pgoutput":
            return pgoutputSeeds()
        case "protocol":
            return protocolSeeds()
        default:
            return []
        }
    }

    static func pgoutputSeeds() -> [[UInt8]] {
        func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
        func string(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }
        func tuple(_ values: [String?]) -> [UInt8] {
            var out = be(Int16(values.count))
            for v in values {
                if let v { out += [UInt8(ascii: "t")] + be(UInt32(v.utf8.count)) + Array(v.utf8) } else { out.append(UInt8(ascii: "n")) }
            }
            return out
        }
        func frame(_ message: [UInt8], at lsn: Int64) -> [UInt8] { [UInt8(ascii: "w")] + be(lsn) + be(lsn) + be(Int64(0)) + message }
        let relation = [UInt8(ascii: "R")] + be(UInt32(9)) + string("public") + string("accounts") + [UInt8(ascii: "f")] + be(Int16(3))
            + [1] + string("id") + be(UInt32(20)) + be(UInt32.max)
            + [0] + string("name") + be(UInt32(25)) + be(UInt32.max)
            + [0] + string("doc") + be(UInt32(25)) + be(UInt32.max)
        let frames: [[UInt8]] = [
            frame(relation, at: 10),
            frame([UInt8(ascii: "B")] + be(Int64(1_000)) + be(Int64(2_000_000)) + be(UInt32(1)), at: 950),
            frame([UInt8(ascii: "I")] + be(UInt32(9)) + [UInt8(ascii: "N")] + tuple(["1", "a\tb", nil]), at: 960),
            frame([UInt8(ascii: "U")] + be(UInt32(9)) + [UInt8(ascii: "O")] + tuple(["1", "a", "x"]) + [UInt8(ascii: "N")]
                  + be(Int16(3)) + [UInt8(ascii: "t")] + be(UInt32(1)) + Array("2".utf8) + [UInt8(ascii: "u"), UInt8(ascii: "n")], at: 961),
            frame([UInt8(ascii: "D")] + be(UInt32(9)) + [UInt8(ascii: "K")] + tuple(["2", nil, nil]), at: 962),
            frame([UInt8(ascii: "C"), 0] + be(Int64(1_000)) + be(Int64(1_008)) + be(Int64(2_000_000)), at: 1_000),
            [UInt8(ascii: "k")] + be(Int64(5_000)) + be(Int64(0)) + [1],
        ]
        let stream = frames.flatMap { [UInt8($0.count & 0xFF), UInt8($0.count >> 8)] + $0 }
        return [[0, 0] + stream, [0b0101, 0] + stream, [0b0110_0110, 3] + stream]
    }

    static func protocolSeeds() -> [[UInt8]] {
        func message(_ build: (inout Sluice_V1_WorkerMessage) -> Void) -> [UInt8] {
            var m = Sluice_V1_WorkerMessage()
            build(&m)
            let bytes: [UInt8]? = try? m.serializedBytes()
            return bytes ?? []
        }
        func hello(_ id: String) -> [UInt8] { message { var h = Sluice_V1_Hello(); h.workerID = id; $0.hello = h } }
        func heartbeat(_ partitions: [(UInt32, Int64)]) -> [UInt8] {
            message {
                var h = Sluice_V1_Heartbeat()
                h.eventsPerSecond = 1_000
                h.partitions = partitions.map { p, epoch in
                    var progress = Sluice_V1_PartitionProgress()
                    progress.partition = p
                    progress.epoch = epoch
                    progress.offset = 10
                    progress.committedOffset = 5
                    return progress
                }
                $0.heartbeat = h
            }
        }
        let steps: [(UInt8, [UInt8])] = [
            (0, hello("w1")), (2, heartbeat([(0, 1), (1, 1), (2, 1)])), (1, hello("w2")), (0x83, heartbeat([(0, 1), (1, 1)])),
            (1, message { var r = Sluice_V1_Released(); r.partition = 1; r.epoch = 1; r.committedOffset = 7; $0.released = r }),
            (1, message { var f = Sluice_V1_Fenced(); f.partition = 0; f.epoch = 1; $0.fenced = f }),
            (1, message { var f = Sluice_V1_Failed(); f.partition = 2; f.epoch = 2; f.reason = "store"; $0.failed = f }),
            (0xFF, heartbeat([(0, 2)])),
        ]
        let stream = steps.flatMap { step, bytes in [step, UInt8(bytes.count & 0xFF), UInt8(bytes.count >> 8)] + bytes }
        return [[2] + stream]
    }
}

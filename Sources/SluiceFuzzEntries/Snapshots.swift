import SluiceCore

// The snapshot codec: SnapshotEnvelope and the state restore of both processors. Arbitrary bytes
// given to `restore` must throw, never trap; a state that restores must be one the processor
// can run on, snapshot again and restore again.

extension FuzzTargets {
    static let snapshotKinds = 9

    /// A fresh processor of kind `kind`: the integer path with each window kind, the records
    /// path over JSON with each window kind, over CSV with a header with each window kind.
    static func snapshotProcessor(_ kind: Int) -> any PartitionProcessing {
        let integerWindows: [WindowSpec] = [.tumbling(sizeMs: 10_000), .sliding(sizeMs: 100, slideMs: 20), .session(gapMs: 40)]
        switch kind % snapshotKinds {
        case let k where k < 3:
            var pipeline = Pipeline.bidsTumbling
            pipeline.window = integerWindows[k]
            pipeline.aggregates = [AggregateSpec(.count), AggregateSpec(.sum, "price"), AggregateSpec(.min, "price"), AggregateSpec(.avg, "price")]
            return PartitionProcessor(partition: 0, pipeline: pipeline)
        case let k where k < 6:
            return RecordProcessor(partition: 0, partitions: 1, pipeline: jsonPipelines[k - 3])
        case let k:
            return RecordProcessor(partition: 0, partitions: 1, pipeline: csvPipelines[4][k - 6])
        }
    }

    /// Input the processors of each kind read (after a restore, and to make seeds).
    static func snapshotText(_ kind: Int) -> [UInt8] {
        switch kind % snapshotKinds {
        case let k where k < 3:
            return Array("1,1,5,1000\n2,1,7,1010\n1,1,9,1030\n3,1,2,900\n".utf8)
        case let k where k < 6:
            return Array("""
                {"id":"o1","customer":{"id":"c1","tier":"gold"},"amount":12.50,"n":3,"u":4,"f":1.5,"ok":true,"ts":1000}
                {"id":"o2","customer":{"id":"c2"},"amount":"0.99","n":null,"ts":"1970-01-01T00:00:02Z"}
                {"id":"o1","customer":{"id":"c1"},"amount":1.00,"ts":1500}
                not json

                """.utf8)
        default:
            return Array("ts,amount,customer,id\n1000,12.50,c1,o1\n2000,\"0.99\",c2,o2\n1500,1.00,c1,o1\n\"x\n".utf8)
        }
    }

    /// Byte 0: the processor; byte 1, bit 0: the rest is a payload to seal into an envelope
    /// (reaching the state decoding past the checksums), else the rest is the envelope itself.
    public static let snapshot: Entry = { data in
        var input = FuzzInput(data)
        let kind = Int(input.byte()) % snapshotKinds
        let seal = input.byte() & 1 != 0
        let body = input.rest()
        let bytes: [UInt8]
        if seal {
            guard let sealed = try? SnapshotEnvelope.seal(body) else { return }
            bytes = sealed
        } else {
            bytes = body
        }
        let processor = snapshotProcessor(kind)
        do {
            try processor.restore(bytes)
        } catch {
            return
        }
        // The restored state runs, and what it snapshots restores.
        snapshotText(kind).withUnsafeBytes { _ = processor.process($0) }
        let again = snapshotProcessor(kind)
        do {
            try again.restore(try processor.snapshot())
        } catch {
            preconditionFailure("a restored processor's own snapshot did not restore: \(error)")
        }
        again.finish()
        _ = again.takeOutput()
    }

    /// Seeds: the payload of each processor's snapshot after reading its input, sealed by the
    /// target (and one whole envelope).
    static func snapshotSeeds() -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        for kind in 0..<snapshotKinds {
            let processor = snapshotProcessor(kind)
            snapshotText(kind).withUnsafeBytes { _ = processor.process($0) }
            guard let sealed = try? processor.snapshot(), let payload = try? SnapshotEnvelope.open(sealed) else { continue }
            seeds.append([UInt8(kind), 1] + payload)
            if kind % 3 == 0 { seeds.append([UInt8(kind), 0] + sealed) }
        }
        return seeds
    }
}

// The connector registry behind SourceFactory, SinkFactory, SinkReader and StoreBinding: each URI
// reaches its connector, wrong-way URIs are refused naming what they are, row-image sources say
// so, and the identities stores are bound to are exactly what they were before the registry.

import Foundation
@testable import SluiceConnectors
import SluiceCore
import SluiceJob
import Testing

@Suite("Connector registry") struct ConnectorRegistryTests {
    @Test("Sources: partitions, row images, and refusals")
    func sources() throws {
        let gen = try SourceFactory(uri: "gen:seed=1,events=100,partitions=3,keys=5")
        #expect(gen.partitions == 3 && !gen.deliversRowImages)
        // Parsing the URI connects to nothing: only `open` does.
        let outbox = try SourceFactory(uri: "postgres-outbox://u@127.0.0.1:1/shop?table=events&partitions=4")
        #expect(outbox.partitions == 4 && outbox.deliversRowImages)
        let cdc = try SourceFactory(uri: "postgres-cdc://u@127.0.0.1:1/shop?table=events&partitions=2")
        #expect(cdc.partitions == 2 && cdc.deliversRowImages)
        let changes = try SourceFactory(uri: "postgres-cdc://u@127.0.0.1:1/shop?table=events&partitions=2", changeEvents: true)
        #expect(!changes.deliversRowImages)

        let sink = #expect(throws: SourceError.self) { try SourceFactory(uri: "sqlite:out.db") }
        #expect(sink?.description.contains("is a sink (sqlite:PATH), not an input") == true, "\(String(describing: sink))")
        let notCDC = #expect(throws: SourceError.self) { try SourceFactory(uri: "gen:", changeEvents: true) }
        #expect(notCDC?.description.contains("postgres-cdc://") == true)
        #expect(throws: (any Error).self) { try SourceFactory(uri: "gen:partitions=x") }
        #expect(throws: (any Error).self) { try SourceFactory(uri: "file:") }
    }

    @Test("Sinks: unknown and input URIs are refused with the list of sinks")
    func sinks() {
        let job = JobSpec.defaultBidsTumbling
        let unknown = #expect(throws: SinkError.self) { try SinkFactory.validate(uri: "bogus:x", job: job) }
        #expect(unknown?.description == "unknown sink 'bogus:x'; expected file:DIR, sqlite:PATH, postgres://USER@HOST:PORT/DBNAME or kafka://HOST:PORT[,HOST:PORT…]/TOPIC[?…]")
        let input = #expect(throws: SinkError.self) { try SinkFactory.validate(uri: "gen:", job: job) }
        #expect(input?.description.contains("is an input") == true)
        #expect(throws: SinkError.self) { try SinkFactory.validate(uri: "file:", job: job) }
        #expect(throws: SinkError.self) { try SinkFactory.validate(uri: "sqlite:", job: job) }
        #expect(throws: SinkError.self) { try SinkFactory.validate(uri: "postgres://u@h/db?mode=sometimes", job: job) }
        #expect(throws: SinkError.self) { try SinkReader.read(uri: "bogus:x", job: job) }
    }

    @Test("Store bindings are the texts they were before the registry")
    func bindingsUnchanged() {
        let job = JobSpec.defaultBidsTumbling
        let cwd = FileManager.default.currentDirectoryPath
        let cases: [(input: String, output: String, expected: String)] = [
            ("gen:seed=1,events=1_000,partitions=2", "sqlite:a.db",
             "input=gen:seed=1,events=1000,partitions=2,keys=10000; sink=sqlite:\(cwd)/a.db"),
            ("file:/tmp/x/../in", "file:/tmp/out/",
             "input=file:/tmp/in; sink=file:/tmp/out"),
            ("data", "postgres://u:secret@h:5432/shop?table=t&mode=upsert",
             "input=file:\(cwd)/data; sink=postgres:shop/t?mode=upsert"),
            ("postgres-outbox://u@h:5432/shop?table=events&partitions=4", "postgres://u@h/shop",
             "input=postgres-outbox:shop/events?key=key; sink=postgres:shop?mode=transactional"),
            ("postgres-cdc://u@h/shop?table=orders&partitions=2&key=id", "bogus:x",
             "input=postgres-cdc:shop/orders?key=id; sink=bogus:x"),
        ]
        for c in cases {
            #expect(StoreBinding.fingerprint(job: job, input: c.input, output: c.output)
                    == "job=\(job.fingerprint); \(c.expected); table=\(job.table)")
        }
    }

    @Test("Row images: strings quoted only when they must be; integers as they are")
    func rowImages() {
        func image(_ values: [String?]) -> String {
            var out: [UInt8] = []
            for (i, v) in values.enumerated() {
                if i > 0 { out.append(44) }
                if let v { RowImageCSV.append(Array(v.utf8), to: &out) }
            }
            return String(decoding: out, as: UTF8.self)
        }
        #expect(image(["12", "-3", "cust-1", nil, "", "a,b", "say \"hi\"", "x\ny", "r\r"])
                == "12,-3,cust-1,,\"\",\"a,b\",\"say \"\"hi\"\"\",\"x\ny\",\"r\r\"")
    }
}

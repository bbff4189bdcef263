// Generator/: the `gen:seed=S,events=N,partitions=P,keys=K` connector, an input only: the seeded
// bids generator (SluiceWorkload's `BidGenerator`) as partitions whose position is the event
// offset (GeneratorSource.swift). Bounded and replayable, so the oracle reads it too.

import Logging
import SluiceCore
import SluiceStorage
import SluiceWorkload

struct GeneratorConnector: SourceConnector {
    var usage: String { "gen:seed=S,events=N,partitions=P,keys=K" }

    func claims(_ uri: String) -> Bool { uri.hasPrefix("gen:") }

    /// The generator's parameters (`WorkloadConfig.parse`: the generator owns their names and
    /// limits, and the oracle's tools read the same URI).
    static func config(_ uri: String) throws -> WorkloadConfig { try WorkloadConfig.parse(uri) }

    func openSource(uri: String, options: SourceOptions) throws -> any SourcePartitions {
        GeneratorPartitions(config: try GeneratorConnector.config(uri))
    }

    func inputIdentity(_ uri: String) -> String {
        guard let c = try? GeneratorConnector.config(uri) else { return uri }
        return "gen:seed=\(c.seed),events=\(c.events),partitions=\(c.partitions),keys=\(c.keys)"
    }
}

struct GeneratorPartitions: SourcePartitions {
    let config: WorkloadConfig
    var partitions: Int { config.partitions }

    func open(partition: Int, position: Int64, tuning: SourceTuning, logger: Logger) throws -> any PartitionSource {
        GeneratorSource(generator: BidGenerator(config), partition: partition, offset: position,
                        linesPerRead: tuning.generatorLinesPerRead)
    }
}

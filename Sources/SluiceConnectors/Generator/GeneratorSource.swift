import SluiceWorkload

/// The seeded generator as a source; the position is the event offset.
public final class GeneratorSource: PartitionSource {
    public private(set) var position: Int64
    private let generator: BidGenerator
    private let partition: Int
    private let end: Int64
    private var buffer: [UInt8] = []
    private let linesPerRead: Int64
    public var remaining: Int64? { end - position }
    public var positionCountsLines: Bool { true }

    public init(generator: BidGenerator, partition: Int, offset: Int64, linesPerRead: Int64 = 65_536) {
        self.generator = generator
        self.partition = partition
        position = offset
        end = Int64(generator.eventCount(partition: partition))
        self.linesPerRead = linesPerRead
        buffer.reserveCapacity(Int(linesPerRead) * 40)
    }

    public func read(_ body: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        guard position < end else { return false }
        let stop = min(end, position + linesPerRead)
        buffer.removeAll(keepingCapacity: true)
        for offset in position..<stop {
            generator.appendLine(partition: partition, offset: Int(offset), to: &buffer)
        }
        buffer.withUnsafeBytes { body($0) }
        position = stop
        return true
    }
}

/// What the runner drives for one partition: the windowed `PartitionProcessor`, or the
/// `ChangeLogProcessor` of a `changes` job. The runner calls it once per block of lines, so the
/// dynamic dispatch costs nothing on the per-event path.
public protocol PartitionProcessing: AnyObject {
    /// Lines consumed: the offset of the next line.
    var offset: Int64 { get }
    var watermark: Int64 { get }
    var eventsIn: Int64 { get }
    /// Processes whole lines; returns how many were consumed.
    @discardableResult func process(_ text: UnsafeRawBufferPointer) -> Int
    /// The input has ended.
    func finish()
    /// Hands over what was produced since the last call.
    func takeOutput() -> PartitionOutput
    func snapshot() throws -> [UInt8]
    func restore(_ sealed: [UInt8]) throws
}

extension PartitionProcessor: PartitionProcessing {}

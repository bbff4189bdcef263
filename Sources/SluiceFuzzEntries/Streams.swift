import SluiceConnectors
import SluiceCoordinator
import SluiceCore
import SluiceProtocol
import SwiftProtobuf

// The pgoutput decoder with the CDC stream decoder behind it, and the protocol messages a worker
// sends, decoded from bytes and applied to the coordinator's core.

extension FuzzTargets {
    /// Byte 0: bits 0-1 the mode (change lines; insert CSV by murmur2, modulo or the default
    /// rule), bits 2-3 the partition count less one, bits 4-5 the partition; byte 1: the start
    /// position (times 100). The rest: replication frames, each with a 2-byte length (little
    /// endian). A frame that fails is a broken connection: the open transaction is dropped and
    /// the stream goes on, as after a reconnect. The position never moves back; what is handed
    /// out is whole lines, and (change mode) each is a change line the changes job reads.
    public static let pgoutput: Entry = { data in
        var input = FuzzInput(data)
        let control = Int(input.byte())
        let partitions = 1 + (control >> 2) & 3
        let partition = ((control >> 4) & 3) % partitions
        let partitioners: [Partitioner?] = [.murmur2, .modulo, nil]
        let mode: CdcStreamDecoder.Mode = control & 3 == 0 ? .changes
            : .inserts(fields: ["id", "name", "doc"], partitioner: partitioners[(control & 3) - 1])
        let decoder = CdcStreamDecoder(table: "accounts", keyColumn: "id", partitions: partitions, partition: partition,
                                       mode: mode, position: Int64(input.byte()) * 100)
        let changes = ChangeLogProcessor(partition: partition)
        var position = decoder.position
        for frame in input.chunks() {
            frame.withUnsafeBytes { raw in
                _ = try? PgOutputDecoder.decode(raw)
                do {
                    try decoder.handle(frame: raw)
                } catch {
                    decoder.discardOpenTransaction()
                }
            }
            precondition(decoder.position >= position, "the CDC position moved back")
            position = decoder.position
            decoder.take { lines in
                precondition(lines.last == 10, "the CDC decoder handed out a partial line")
                if mode == .changes { changes.process(lines) }
            }
        }
        let output = changes.takeOutput()
        precondition(output.deadLetters.isEmpty, "a change line the changes job cannot read: \(output.deadLetters.first.map { "\($0)" } ?? "")")
    }

    /// A lease ledger in memory that keeps the last save of each partition.
    final class MemoryLedger: LeaseLedger {
        var saved: [Int: (epoch: Int64, owner: String?)] = [:]
        func load() throws -> [(partition: Int, epoch: Int64, owner: String?)] { [] }
        func save(partition: Int, epoch: Int64, owner: String?) throws { saved[partition] = (epoch, owner) }
    }

    /// Byte 0: the partition count less one (0-7, bits 0-2). The rest: steps, each a control
    /// byte (bits 0-6: milliseconds to advance, times 50; bit 7: a tick before the message) and a
    /// `WorkerMessage` with a 2-byte length (little endian). A hello opens the session of the
    /// worker it names; the messages after it are that worker's, as the session handler takes them.
    /// After each step: epochs never go back, the ledger holds every owner and epoch the core has
    /// (a grant is durable before it leaves), and an owner's lease is granted or revoking.
    public static let workerMessages: Entry = { data in
        var input = FuzzInput(data)
        let partitions = 1 + Int(input.byte() & 7)
        let ledger = MemoryLedger()
        guard var core = try? CoordinatorCore(partitions: partitions, leaseTTL: 1_000, ledger: ledger, now: 0) else { return }
        var now: Int64 = 0
        var worker: String?
        var epochs = Array(repeating: Int64(0), count: partitions)
        while !input.isAtEnd {
            let step = input.byte()
            let bytes = input.take(input.uint16())
            now += Int64(step & 0x7F) * 50
            do {
                if step & 0x80 != 0 { core.sent(try core.tick(now: now), now: now) }
                guard let proto = try? Sluice_V1_WorkerMessage(serializedBytes: bytes),
                      let message = WorkerSessionMessage(proto) else { continue }
                if case .hello(let id) = message {
                    guard !id.isEmpty else { continue }
                    worker = id
                }
                guard let worker else { continue }  // a session starts with hello
                core.sent(try core.apply(message, from: worker, now: now), now: now)
            } catch {
                preconditionFailure("the core threw with a ledger that never fails: \(error)")
            }
            for (p, state) in core.partitions.enumerated() {
                precondition(state.epoch >= epochs[p], "partition \(p): epoch \(state.epoch) after \(epochs[p])")
                epochs[p] = state.epoch
                if state.epoch > 0 {
                    precondition(ledger.saved[p]?.epoch == state.epoch && ledger.saved[p]?.owner == state.owner,
                                 "partition \(p): the ledger does not hold the core's epoch and owner")
                }
                precondition((state.owner == nil) == (state.state == .unassigned), "partition \(p): owner and lease state disagree")
            }
        }
    }
}

import ArgumentParser
import Foundation
import SluiceCoordinator
import SluiceProtocol
import SluiceRuntime
import SluiceTLS

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Partitions (owner, epoch, committed offset, watermark, lag) and workers.")
    @Option(help: "Coordinator address, or several separated by commas (the leader answers).") var coordinator = "127.0.0.1:7400"
    @Option(name: .customLong("as"), help: "The operator identity to present (its certificate in --certs).") var identity = "operator"
    @OptionGroup var tls: TLSOptions

    func run() async throws {
        let addresses = try coordinator.split(separator: ",").map { try parseAddress(String($0), option: "--coordinator") }
        let files: TLSFiles?
        do {
            files = try tls.files(identity: identity)
            try files?.validate(as: .operator)  // the coordinator answers only the operator role
        } catch {
            throw userError(error)
        }
        var failures: [String] = []
        for (host, port) in addresses {
            do {
                print(render(try await fetchStatus(host: host, port: port, tls: files)))
                return
            } catch {
                failures.append("\(host):\(port): \(error)")
            }
        }
        throw userError(ValidationError("no coordinator answered:\n  " + failures.joined(separator: "\n  ")))
    }
}

func render(_ status: Sluice_V1_StatusResponse) -> String {
    // At least one space after every column: worker ids are pod names on Kubernetes, longer than the column.
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
    func watermark(_ w: Int64) -> String { w == Int64.min ? "-" : w == Int64.max ? "end" : String(w) }
    var lines = [pad("partition", 10) + pad("owner", 12) + pad("epoch", 7) + pad("committed", 12) + pad("watermark", 15) + pad("lag", 12) + "state"]
    for p in status.partitions {
        lines.append(pad(String(p.partition), 10) + pad(p.owner.isEmpty ? "-" : p.owner, 12) + pad(String(p.epoch), 7)
                     + pad(grouped(p.committedOffset), 12) + pad(watermark(p.watermark), 15)
                     + pad(grouped(p.lag), 12) + p.state)
    }
    lines.append("")
    lines.append(pad("worker", 12) + pad("partitions", 22) + pad("events/s", 12) + "last heartbeat")
    for w in status.workers {
        lines.append(pad(w.workerID, 12) + pad(w.partitions.map(String.init).joined(separator: ","), 22)
                     + pad(grouped(Int64(w.eventsPerSecond)), 12) + "\(w.lastHeartbeatMsAgo) ms ago")
    }
    return lines.joined(separator: "\n")
}

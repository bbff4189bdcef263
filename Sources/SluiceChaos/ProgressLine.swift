import Foundation
import SluiceRuntime

extension ChaosRun {
    /// The live line: elapsed, events committed, faults so far, who holds what.
    func printProgress(now: Double, observer: ClusterObserver, total: Int, faults: Int, of scheduled: Int, heals: Int) async {
        let committed = await observer.committed
        let status = await observer.lastStatus
        let statusAt = await observer.lastStatusAt
        var state: String
        if let status, now - statusAt < 3 {
            state = status.workers.sorted { $0.workerID < $1.workerID }
                .map { "\($0.workerID.replacingOccurrences(of: "worker-", with: "w")):\($0.partitions.sorted().map(String.init).joined(separator: ","))" }
                .joined(separator: " ")
            let finished = status.partitions.filter { $0.state == "finished" }.count
            state += "  finished \(finished)/\(status.partitions.count)"
        } else {
            state = "coordinator not answering"
        }
        let line = String(format: "\r  %6.1fs  committed %@/%@  faults %d/%d (%d acting)  %@", now,
                          grouped(committed) as NSString, grouped(Int64(total)) as NSString, faults, scheduled, heals, state as NSString)
        FileHandle.standardError.write(Data(line.padding(toLength: max(line.count, 130), withPad: " ", startingAt: 0).utf8))
    }
}

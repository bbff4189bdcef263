import SluiceCore

/// The orders workload (`sluice gen --workload orders`): JSON lines of orders as an outbox relay
/// delivers them, replayable by partition and offset like the bids. String customer ids placed by
/// murmur2 (so each partition holds exactly the customers its key belongs to), RFC 3339 times,
/// decimal amounts (as JSON numbers, sometimes as strings), a status, a nested customer with a
/// tier that may be null or missing, about 1% re-delivered orders (an earlier line of the same
/// partition repeated byte for byte: what `dedupe` removes) and 0.1% malformed lines.
public struct OrderGenerator: Sendable {
    public let config: WorkloadConfig
    /// The customers of each partition: `cust-NNNNN` whose murmur2 partition it is.
    private let customers: [[String]]

    public static let statuses = ["paid", "paid", "paid", "paid", "paid", "paid", "paid", "pending", "refunded", "cancelled"]
    public static let tiers = ["gold", "silver", "bronze"]

    public init(_ config: WorkloadConfig) {
        self.config = config
        let partitioner = KeyPartitioner(.murmur2, partitions: config.partitions)
        var byPartition = Array(repeating: [String](), count: config.partitions)
        var j = 0
        // `keys` customers, and more if a partition would otherwise have none.
        while j < config.keys || byPartition.contains(where: \.isEmpty) {
            let id = OrderGenerator.customerID(j)
            byPartition[partitioner.murmur2Partition(Array(id.utf8))].append(id)
            j += 1
        }
        customers = byPartition
    }

    public static func customerID(_ j: Int) -> String {
        let digits = String(j)
        return "cust-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }

    public func eventCount(partition: Int) -> Int { BidGenerator(config).eventCount(partition: partition) }

    public enum Kind: Sendable, Equatable { case order, duplicate(of: Int), malformed }

    public func kind(partition: Int, offset: Int) -> Kind {
        var rng = rng(partition: partition, offset: offset, salt: 0x5EED)
        let roll = rng.next() % 1_000
        if roll == 0 { return .malformed }
        if roll <= 10, offset > 0 { return .duplicate(of: offset - 1 - Int(rng.next() % UInt64(min(offset, 50)))) }
        return .order
    }

    private func rng(partition: Int, offset: Int, salt: UInt64) -> SplitMix64 {
        SplitMix64(seed: config.seed ^ salt ^ (UInt64(partition) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(offset) &* 0xD1B5_4A32_D192_ED03))
    }

    /// The JSON line of the order first written at (partition, offset), without its newline.
    public func orderLine(partition: Int, offset: Int) -> String {
        var rng = rng(partition: partition, offset: offset, salt: 0x0DE5)
        let global = Int64(offset) * Int64(config.partitions) + Int64(partition)
        var time = WorkloadConfig.startTimeMs + global / 10
        let disorder = rng.next() % 1_000
        if disorder == 0 { time -= 5_000 + Int64(rng.next() % 60_001) }  // late for a 1 min window
        else if disorder < 50 { time -= 1 + Int64(rng.next() % 2_000) }
        let mine = customers[partition]
        let hot = rng.next() % 100 < 30
        let customer = mine[Int(rng.next() % UInt64(hot ? min(5, mine.count) : mine.count))]
        let cents = 100 + Int64(rng.next() % 49_901)
        let amountText = DecimalText.format(cents, scale: 2)
        let amount = rng.next() % 20 == 0 ? "\"\(amountText)\"" : amountText
        let status = OrderGenerator.statuses[Int(rng.next() % UInt64(OrderGenerator.statuses.count))]
        let tierRoll = rng.next() % 20
        let tier = tierRoll == 0 ? "" : tierRoll == 1 ? ",\"tier\":null" : ",\"tier\":\"\(OrderGenerator.tiers[Int(rng.next() % 3)])\""
        var ts = Timestamps.rfc3339(milliseconds: time)
        if rng.next() % 20 == 0, let shifted = OrderGenerator.withOffset(time) { ts = shifted }
        let digits = String(offset)
        let id = "ord-\(partition)-" + String(repeating: "0", count: max(0, 7 - digits.count)) + digits
        let note = rng.next() % 50 == 0 ? ",\"note\":\"caf\\u00e9 \\\"quoted\\\"\"" : ""
        return "{\"order_id\":\"\(id)\",\"customer\":{\"id\":\"\(customer)\"\(tier)},\"amount\":\(amount),\"status\":\"\(status)\",\"ts\":\"\(ts)\"\(note)}"
    }

    /// The same instant written with a +01:00 offset.
    static func withOffset(_ ms: Int64) -> String? {
        let utc = Timestamps.rfc3339(milliseconds: ms + 3_600_000)
        guard utc.hasSuffix("Z") else { return nil }
        return String(utc.dropLast()) + "+01:00"
    }

    public func appendLine(partition: Int, offset: Int, to out: inout [UInt8]) {
        switch kind(partition: partition, offset: offset) {
        case .order:
            out.append(contentsOf: orderLine(partition: partition, offset: offset).utf8)
        case .duplicate(let original):
            // A re-delivery repeats the original; if that was malformed, this one is an order.
            let source = kind(partition: partition, offset: original) == .malformed ? offset : original
            out.append(contentsOf: orderLine(partition: partition, offset: source).utf8)
        case .malformed:
            let line = orderLine(partition: partition, offset: offset)
            var rng = rng(partition: partition, offset: offset, salt: 0xBAD)
            switch rng.next() % 4 {
            case 0: out.append(contentsOf: line.utf8.prefix(line.utf8.count / 2))  // cut short
            case 1: out.append(contentsOf: line.replacingAmount(with: "12.345").utf8)  // too precise
            case 2: out.append(contentsOf: line.replacingAmount(with: "null").utf8)  // not nullable
            default: out.append(contentsOf: "garbage line \(offset)".utf8)
            }
        }
        out.append(10)
    }
}

private extension String {
    /// The line with its amount value replaced (`"amount":…,` up to the next comma).
    func replacingAmount(with value: String) -> String {
        guard let start = range(of: "\"amount\":"), let end = self[start.upperBound...].firstIndex(of: ",") else { return self }
        return String(self[..<start.upperBound]) + value + String(self[end...])
    }
}

extension OrderGenerator {
    /// jobs/orders-revenue.yaml, for the benchmarks and the demo, which run without the repository
    /// at hand (a test keeps the two the same).
    public static let revenueJob = """
# Revenue per customer per minute from the orders workload (`sluice gen --workload orders`):
# paid orders only, re-delivered orders removed, amounts summed exactly as decimals.
name: orders-revenue
format: json
schema:
  - {name: order_id, type: string}
  - {name: customer, type: string, path: customer.id}
  - {name: tier, type: string, path: customer.tier, nullable: true}
  - {name: amount, type: decimal, scale: 2, min: 0.01}
  - {name: status, type: string}
  - {name: ts, type: timestamp}
key: customer
time: ts
watermark:
  max_out_of_orderness_ms: 2000
filter: "status = 'paid'"
dedupe: {field: order_id, within_ms: 600000}
window:
  kind: tumbling
  size_ms: 60000
aggregates:
  - count
  - sum: amount
  - count_distinct: order_id
  - max: amount
  - last: status
table: orders_revenue
checkpoint:
  interval_ms: 1000

"""
}

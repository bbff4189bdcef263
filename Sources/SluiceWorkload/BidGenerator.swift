// The reference workload (docs/WORKLOAD.md): Nexmark bids `auction,bidder,price,event_time_ms`.
//
// Each event is computed from (seed, partition, offset) alone by a counter-based random function,
// so any partition can be replayed from any offset in O(1) and the stream is the same on every
// machine. Event time follows the interleaved global position `offset * P + partition`: about 1 ms
// per 10 events across the stream.

public struct WorkloadConfig: Sendable, Equatable {
    public var seed: UInt64
    public var events: Int
    public var partitions: Int
    public var keys: Int

    public static let startTimeMs: Int64 = 1_767_225_600_000  // 2026-01-01T00:00:00Z

    public init(seed: UInt64 = 42, events: Int = 1_000_000, partitions: Int = 8, keys: Int = 10_000) {
        self.seed = seed
        self.events = events
        self.partitions = partitions
        self.keys = keys
    }

    /// Nil when valid, else what is wrong, naming the parameter.
    public var problem: String? {
        if events < 0 { return "events must be >= 0, got \(events)" }
        if partitions < 1 || partitions > 65_536 { return "partitions must be between 1 and 65536, got \(partitions)" }
        if keys < partitions { return "keys (\(keys)) must be at least partitions (\(partitions)) so every partition has a key" }
        return nil
    }
}

public struct BidGenerator: Sendable {
    public let config: WorkloadConfig

    public init(_ config: WorkloadConfig) { self.config = config }

    /// Events in `partition`: the stream's events dealt out round-robin.
    public func eventCount(partition: Int) -> Int {
        let p = config.partitions
        return config.events / p + (partition < config.events % p ? 1 : 0)
    }

    public enum Kind: Sendable, Equatable { case inOrder, outOfOrder, late, malformed }

    public struct Bid: Sendable, Equatable {
        public var auction: UInt64
        public var bidder: UInt64
        public var price: Int64
        public var eventTimeMs: Int64
        public var kind: Kind
    }

    /// The event at `offset` of `partition`.
    public func bid(partition: Int, offset: Int) -> Bid {
        let p = UInt64(config.partitions)
        var rng = SplitMix64(seed: config.seed ^ (UInt64(partition) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(offset) &* 0xD1B5_4A32_D192_ED03))
        let global = Int64(offset) * Int64(p) + Int64(partition)
        let base = WorkloadConfig.startTimeMs + global / 10

        // Keys of this partition: auction = j * P + partition < keys. A few hot auctions per partition.
        let keysHere = UInt64((config.keys - partition + config.partitions - 1) / config.partitions)
        let hot = rng.next() % 100 < 30
        let j = hot ? rng.next() % min(5, keysHere) : rng.next() % keysHere
        let auction = j * p + UInt64(partition)
        let bidder = 1 + rng.next() % 1_000_000
        let price = Int64(100 + rng.next() % 100_000)

        let roll = rng.next() % 10_000
        let kind: Kind
        var time = base
        switch roll {
        case 0: kind = .malformed
        case 1...10:
            kind = .late
            time = base - 5_000 - Int64(rng.next() % 25_001)
        case 11...510:
            kind = .outOfOrder
            time = base - 1 - Int64(rng.next() % 2_000)
        default: kind = .inOrder
        }
        return Bid(auction: auction, bidder: bidder, price: price, eventTimeMs: time, kind: kind)
    }

    /// Appends the text line (with its `\n`) of the event at `offset` of `partition`. About 0.01% of
    /// lines are malformed in one of several ways.
    public func appendLine(partition: Int, offset: Int, to out: inout [UInt8]) {
        let bid = bid(partition: partition, offset: offset)
        if bid.kind == .malformed {
            let variants = [
                "\(bid.auction),\(bid.bidder),\(bid.price)",            // a field missing
                "\(bid.auction),\(bid.bidder),-\(bid.price),\(bid.eventTimeMs)",  // price <= 0
                "\(bid.auction),bidder?,\(bid.price),\(bid.eventTimeMs)",  // not a number
                "garbage line \(offset)",
            ]
            out.append(contentsOf: variants[Int(bid.bidder % 4)].utf8)
            out.append(10)
            return
        }
        appendDecimal(bid.auction, to: &out)
        out.append(44)
        appendDecimal(bid.bidder, to: &out)
        out.append(44)
        appendDecimal(UInt64(bid.price), to: &out)
        out.append(44)
        appendDecimal(UInt64(bid.eventTimeMs), to: &out)
        out.append(10)
    }

    private func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var v = value
        var n = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            repeat {
                buf[19 - n] = UInt8(48 + v % 10)
                v /= 10
                n += 1
            } while v > 0
            out.append(contentsOf: buf[(20 - n)...])
        }
    }
}

/// SplitMix64: tiny, fast, and the same on every platform.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension BidGenerator {
    /// The bid at (partition, offset) as a JSON line (`sluice gen --format json`): the same events
    /// as the CSV, malformed ones malformed in the JSON way.
    public func appendJSONLine(partition: Int, offset: Int, to out: inout [UInt8]) {
        let bid = bid(partition: partition, offset: offset)
        let line: String
        if bid.kind == .malformed {
            let variants = [
                "{\"auction\":\(bid.auction),\"bidder\":\(bid.bidder),\"price\":\(bid.price)}",  // a field missing
                "{\"auction\":\(bid.auction),\"bidder\":\(bid.bidder),\"price\":-\(bid.price),\"event_time_ms\":\(bid.eventTimeMs)}",
                "{\"auction\":\(bid.auction),\"bidder\":\"bidder?\",\"price\":\(bid.price),\"event_time_ms\":\(bid.eventTimeMs)}",
                "garbage line \(offset)",
            ]
            line = variants[Int(bid.bidder % 4)]
        } else {
            line = "{\"auction\":\(bid.auction),\"bidder\":\(bid.bidder),\"price\":\(bid.price),\"event_time_ms\":\(bid.eventTimeMs)}"
        }
        out.append(contentsOf: line.utf8)
        out.append(10)
    }
}

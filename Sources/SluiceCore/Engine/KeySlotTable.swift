/// An open-addressing hash table from key to accumulator slot, for the hottest lookup of the engine
/// (one per event and window). Fibonacci hashing and linear probing; no deletion (a window's table
/// is dropped whole when it fires). About 3x faster than `Dictionary<UInt64, Int32>` here, whose
/// seeded SipHash dominates the per-event cost.
struct KeySlotTable {
    private var keys: [UInt64]
    private var slots: [Int32]  // -1: empty
    private var shift: UInt64
    private(set) var count = 0

    init(capacity: Int = 16) {
        var size = 16
        while size < capacity * 2 { size *= 2 }
        keys = Array(repeating: 0, count: size)
        slots = Array(repeating: -1, count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
    }

    @inline(__always)
    private func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    @inline(__always)
    func slot(for key: UInt64) -> Int32? {
        let mask = keys.count - 1
        var i = home(key)
        while true {
            let s = slots[i]
            if s < 0 { return nil }
            if keys[i] == key { return s }
            i = (i + 1) & mask
        }
    }

    /// Inserts a key that is not in the table.
    mutating func insert(_ key: UInt64, slot: Int32) {
        if (count + 1) * 2 > keys.count { grow() }
        let mask = keys.count - 1
        var i = home(key)
        while slots[i] >= 0 { i = (i + 1) & mask }
        keys[i] = key
        slots[i] = slot
        count += 1
    }

    private mutating func grow() {
        let old = (keys, slots)
        let size = keys.count * 2
        keys = Array(repeating: 0, count: size)
        slots = Array(repeating: -1, count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
        count = 0
        for i in old.0.indices where old.1[i] >= 0 { insert(old.0[i], slot: old.1[i]) }
    }

    func forEach(_ body: (UInt64, Int32) -> Void) {
        for i in keys.indices where slots[i] >= 0 { body(keys[i], slots[i]) }
    }
}

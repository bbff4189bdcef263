/// An open-addressing hash table from key to accumulator slot, for the hottest lookup of the engine
/// (one per event and window). Fibonacci hashing and linear probing; no deletion (a window's table
/// is dropped whole when it fires). About 3x faster than `Dictionary<UInt64, Int32>` here, whose
/// seeded SipHash dominates the per-event cost. Key and slot sit side by side in raw memory: a
/// probe touches one cache line and checks no array bounds. A value with no reference count (a
/// lookup copies three words, no retain): its owner calls `deallocate()` once, when the table goes.
struct KeySlotTable {
    private struct Entry {
        var key: UInt64
        var slot: Int32  // -1: empty
    }

    private var entries: UnsafeMutablePointer<Entry>
    private var size: Int
    private var shift: UInt64
    private(set) var count = 0

    init(capacity: Int = 16) {
        var size = 16
        while size < capacity * 2 { size *= 2 }
        self.size = size
        entries = .allocate(capacity: size)
        entries.initialize(repeating: Entry(key: 0, slot: -1), count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
    }

    /// Frees the entries; the table (and every copy of it) must not be used afterwards.
    func deallocate() { entries.deallocate() }

    @inline(__always)
    private func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    @inline(__always)
    func slot(for key: UInt64) -> Int32? {
        let mask = size - 1
        var i = home(key)
        while true {
            let entry = entries[i]
            if entry.slot < 0 { return nil }
            if entry.key == key { return entry.slot }
            i = (i + 1) & mask
        }
    }

    /// Inserts a key that is not in the table.
    mutating func insert(_ key: UInt64, slot: Int32) {
        if (count + 1) * 2 > size { grow() }
        let mask = size - 1
        var i = home(key)
        while entries[i].slot >= 0 { i = (i + 1) & mask }
        entries[i] = Entry(key: key, slot: slot)
        count += 1
    }

    private mutating func grow() {
        let old = entries, oldSize = size
        size *= 2
        entries = .allocate(capacity: size)
        entries.initialize(repeating: Entry(key: 0, slot: -1), count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
        count = 0
        for i in 0..<oldSize where old[i].slot >= 0 { insert(old[i].key, slot: old[i].slot) }
        old.deallocate()
    }

    func forEach(_ body: (UInt64, Int32) -> Void) {
        for i in 0..<size where entries[i].slot >= 0 { body(entries[i].key, entries[i].slot) }
    }
}

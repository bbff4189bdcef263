/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and many log formats.
///
/// Software slicing-by-8: eight 256-entry tables let the main loop fold 8 input bytes per step.
public enum CRC32C {
    static let polynomial: UInt32 = 0x82F6_3B78

    /// Eight tables of 256 entries, flattened: table `k` starts at `k * 256`.
    /// Table 0 is the classic byte-at-a-time table; table k advances a CRC by k further zero bytes.
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 {
                c = (c & 1) != 0 ? (c >> 1) ^ polynomial : c >> 1
            }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let previous = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (previous >> 8) ^ t[Int(previous & 0xFF)]
            }
        }
        return t
    }()

    /// CRC-32C of `bytes`. Pass the result of a previous call as `crc` to checksum data split across buffers:
    /// `checksum(b, continuing: checksum(a))` equals the checksum of `a + b`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard var p = bytes.baseAddress else { return crc }
        var remaining = bytes.count
        var c = ~crc
        tables.withUnsafeBufferPointer { t in
            while remaining >= 8 {
                // The first four bytes absorb the running CRC; the byte at offset j uses table 7 - j.
                let lo = UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)) ^ c
                let hi = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                let a: UInt32 = t[1792 + Int(lo & 0xFF)] ^ t[1536 + Int((lo >> 8) & 0xFF)]
                let b: UInt32 = t[1280 + Int((lo >> 16) & 0xFF)] ^ t[1024 + Int(lo >> 24)]
                let d: UInt32 = t[768 + Int(hi & 0xFF)] ^ t[512 + Int((hi >> 8) & 0xFF)]
                let e: UInt32 = t[256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                c = a ^ b ^ d ^ e
                p += 8
                remaining -= 8
            }
            while remaining > 0 {
                c = t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                p += 1
                remaining -= 1
            }
        }
        return ~c
    }

    /// CRC-32C of a byte array.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}

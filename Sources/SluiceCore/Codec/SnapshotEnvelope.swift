/// The on-disk wrapper around an operator state snapshot: a checksummed header plus an LZ4 frame.
///
/// Layout (all integers little endian), 24-byte header then the body:
///
///     offset  size  field
///          0     4  magic "SLST"
///          4     2  format version (currently 1)
///          6     2  flags: bit 0 = body is an LZ4 frame (seal always sets it); other bits must be 0
///          8     8  payload length, uncompressed, at most `maxPayloadSize`
///         16     4  CRC-32C of the uncompressed payload
///         20     4  CRC-32C of header bytes 0..<20, so a damaged length is caught before anything is allocated
///         24     …  body: the LZ4 frame (or, with bit 0 clear, the payload itself)
///
/// `open` checks magic, then version (a newer version may lay out its header differently), then the
/// header CRC, then decodes and checks the payload CRC. Any mismatch throws; it never traps on any input.
public enum SnapshotEnvelope {
    public static let currentVersion: UInt16 = 1
    /// Largest payload `seal` accepts and `open` will allocate: 1 GiB.
    public static let maxPayloadSize: UInt64 = 1 << 30

    static let magic: [UInt8] = Array("SLST".utf8)
    static let headerSize = 24
    static let flagLZ4: UInt16 = 1 << 0

    public static func seal(_ payload: [UInt8]) throws -> [UInt8] {
        guard UInt64(payload.count) <= maxPayloadSize else {
            throw CodecError.compression("payload of \(payload.count) bytes exceeds the \(maxPayloadSize)-byte limit")
        }
        let body = try LZ4Frame.compress(payload)
        var w = BinaryWriter(capacity: headerSize + body.count)
        w.writeRaw(magic)
        w.write(currentVersion)
        w.write(flagLZ4)
        w.write(UInt64(payload.count))
        w.write(CRC32C.checksum(payload))
        w.write(w.bytes.withUnsafeBytes { CRC32C.checksum($0) })
        w.writeRaw(body)
        return w.bytes
    }

    public static func open(_ sealed: [UInt8]) throws -> [UInt8] {
        var r = BinaryReader(sealed)
        guard try r.readRaw(count: magic.count) == magic else {
            throw CodecError.corrupt("bad magic: not a snapshot envelope")
        }
        let version = try r.readUInt16()
        guard version == currentVersion else { throw CodecError.unsupportedVersion(version) }
        let flags = try r.readUInt16()
        let length = try r.readUInt64()
        let payloadCRC = try r.readUInt32()
        let headerCRC = try r.readUInt32()

        let actualHeaderCRC = sealed.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<20])) }
        guard headerCRC == actualHeaderCRC else {
            throw CodecError.corrupt("header checksum mismatch (stored \(hex(headerCRC)), computed \(hex(actualHeaderCRC)))")
        }
        guard flags & ~flagLZ4 == 0 else { throw CodecError.corrupt("unknown flags \(hex(UInt32(flags)))") }
        guard length <= maxPayloadSize else {
            throw CodecError.corrupt("payload length \(length) exceeds the \(maxPayloadSize)-byte limit")
        }
        let bodyCount = sealed.count - headerSize

        let payload: [UInt8]
        if flags & flagLZ4 != 0 {
            // LZ4 cannot expand a byte into more than 255; refuse a length the body could never produce
            // rather than allocate it (the limit includes slack for the frame's own header and block sizes).
            guard length <= UInt64(bodyCount) * 256 + 65_536 else {
                throw CodecError.corrupt("payload length \(length) impossible for a \(bodyCount)-byte compressed body")
            }
            do {
                payload = try sealed.withUnsafeBytes {
                    try LZ4Frame.decompress(UnsafeRawBufferPointer(rebasing: $0[headerSize...]), expectedSize: Int(length))
                }
            } catch CodecError.compression(let reason) {
                throw CodecError.corrupt("compressed body: \(reason)")
            }
        } else {
            guard UInt64(bodyCount) == length else {
                throw CodecError.corrupt("body is \(bodyCount) bytes, header says \(length)")
            }
            payload = Array(sealed[headerSize...])
        }

        let actualPayloadCRC = CRC32C.checksum(payload)
        guard payloadCRC == actualPayloadCRC else {
            throw CodecError.corrupt("payload checksum mismatch (stored \(hex(payloadCRC)), computed \(hex(actualPayloadCRC)))")
        }
        return payload
    }

    private static func hex(_ v: UInt32) -> String {
        "0x" + String(v, radix: 16, uppercase: true)
    }
}

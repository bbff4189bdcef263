import CLZ4

/// LZ4 frame format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md) via liblz4's LZ4F API.
///
/// Frames carry the content size, a checksum per compressed block and a content checksum (all xxHash32),
/// so liblz4 itself rejects damage anywhere in the frame.
public enum LZ4Frame {
    /// Compresses `input` into a single LZ4 frame.
    public static func compress(_ input: [UInt8]) throws -> [UInt8] {
        try input.withUnsafeBytes { try compress($0) }
    }

    /// Compresses the bytes in `input` into a single LZ4 frame.
    public static func compress(_ input: UnsafeRawBufferPointer) throws -> [UInt8] {
        if let src = input.baseAddress { return try compressFrame(src, count: input.count) }
        // An empty buffer has no base address, but liblz4 wants a valid pointer even for zero bytes.
        return try withUnsafeBytes(of: UInt8(0)) { placeholder in
            guard let src = placeholder.baseAddress else { throw CodecError.compression("no input buffer") }
            return try compressFrame(src, count: 0)
        }
    }

    private static func compressFrame(_ src: UnsafeRawPointer, count: Int) throws -> [UInt8] {
        var prefs = LZ4F_preferences_t()  // zeroed = library defaults
        prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        // Block checksums cover the compressed bytes: a damaged match offset can still decode to the
        // right content (repetitive data), and callers want every altered byte reported, not just wrong output.
        prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled
        prefs.frameInfo.contentSize = UInt64(count)  // lets liblz4 cross-check the decoded size
        let bound = LZ4F_compressFrameBound(count, &prefs)
        try check(bound)
        return try [UInt8](unsafeUninitializedCapacity: bound) { dst, initialized in
            guard let dstBase = dst.baseAddress else { throw CodecError.compression("no output buffer") }
            let written = LZ4F_compressFrame(dstBase, bound, src, count, &prefs)
            try check(written)
            initialized = written
        }
    }

    /// Decompresses one LZ4 frame that must expand to exactly `expectedSize` bytes.
    ///
    /// Never allocates more than `expectedSize` bytes of output, whatever the frame claims.
    /// Throws `.truncated` if the frame ends early, `.compression` on any other problem.
    public static func decompress(_ input: [UInt8], expectedSize: Int) throws -> [UInt8] {
        try input.withUnsafeBytes { try decompress($0, expectedSize: expectedSize) }
    }

    /// Decompresses one LZ4 frame held in `input`; see `decompress(_:expectedSize:)`.
    public static func decompress(_ input: UnsafeRawBufferPointer, expectedSize: Int) throws -> [UInt8] {
        guard expectedSize >= 0 else {
            throw CodecError.compression("negative expected size \(expectedSize)")
        }
        guard let srcBase = input.baseAddress, !input.isEmpty else { throw CodecError.truncated }

        var context: OpaquePointer?
        try check(LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION)))
        guard let context else { throw CodecError.compression("no decompression context") }
        defer { _ = LZ4F_freeDecompressionContext(context) }

        // At least one byte of capacity so the output buffer always has a base address.
        return try [UInt8](unsafeUninitializedCapacity: max(expectedSize, 1)) { out, initialized in
            guard let outBase = out.baseAddress else { throw CodecError.compression("no output buffer") }
            var produced = 0
            var consumed = 0
            while true {
                var dstSize = expectedSize - produced
                var srcSize = input.count - consumed
                let hint = LZ4F_decompress(context, outBase + produced, &dstSize, srcBase + consumed, &srcSize, nil)
                try check(hint)
                produced += dstSize
                consumed += srcSize
                initialized = produced
                if hint == 0 { break }  // frame complete, content checksum verified
                // liblz4 may buffer internally, so keep calling while anything moves.
                if dstSize == 0 && srcSize == 0 {
                    if produced == expectedSize {
                        throw CodecError.compression("frame expands beyond the expected \(expectedSize) bytes")
                    }
                    throw CodecError.truncated
                }
            }
            guard consumed == input.count else {
                throw CodecError.compression("\(input.count - consumed) trailing bytes after the frame")
            }
            guard produced == expectedSize else {
                throw CodecError.compression("frame expands to \(produced) bytes, expected \(expectedSize)")
            }
        }
    }

    /// Throws the LZ4F error name if `code` is an LZ4F error code.
    private static func check(_ code: Int) throws {
        if LZ4F_isError(code) != 0 {
            throw CodecError.compression(String(cString: LZ4F_getErrorName(code)))
        }
    }
}

/// Errors raised while encoding or decoding binary state (readers, LZ4 frames, snapshot envelopes).
public enum CodecError: Error, Equatable, CustomStringConvertible {
    /// The input ended before the value being read was complete.
    case truncated
    /// The input is malformed; the string says what was wrong.
    case corrupt(String)
    /// A snapshot envelope carries a format version this build cannot read.
    case unsupportedVersion(UInt16)
    /// The compression library reported an error (LZ4F error name or a size problem).
    case compression(String)

    public var description: String {
        switch self {
        case .truncated:
            return "codec: input truncated"
        case .corrupt(let reason):
            return "codec: corrupt input: \(reason)"
        case .unsupportedVersion(let version):
            return "codec: unsupported format version \(version)"
        case .compression(let reason):
            return "codec: compression error: \(reason)"
        }
    }
}

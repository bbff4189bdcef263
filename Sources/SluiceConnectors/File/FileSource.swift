import Foundation

/// A partition file read in large blocks; the position is a byte offset. The file must not change
/// while a run reads it: only its size at opening is read, and at the end its size and modification
/// time are checked again, so that a line still being written (a growing file) fails the run
/// instead of being taken, torn, as an event.
public final class FileSource: PartitionSource {
    public private(set) var position: Int64
    private let path: String
    private let fd: FileDescriptor
    private var buffer: [UInt8]
    private var buffered = 0   // bytes in `buffer` not yet handed out
    private var atEnd = false
    private let size: Int64
    private let modified: timespec
    /// Where the next `read(2)` starts.
    private var filePosition: Int64
    public var remaining: Int64? { max(0, size - position) }
    public var positionCountsLines: Bool { false }

    public init(path: String, position: Int64, blockSize: Int = 1 << 20) throws {
        self.path = path
        self.position = position
        filePosition = position
        fd = try FileDescriptor(path: path)
        var info = stat()
        guard fstat(fd.raw, &info) == 0 else {
            throw SourceError("cannot stat '\(path)': \(String(cString: strerror(errno)))")
        }
        size = Int64(info.st_size)
        modified = info.st_mtim
        buffer = [UInt8](repeating: 0, count: blockSize)
        guard lseek(fd.raw, off_t(position), SEEK_SET) == off_t(position) else {
            throw SourceError("cannot seek to byte \(position) of '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    public func read(_ body: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        while true {
            if !atEnd {
                if buffered == buffer.count {  // a line longer than the buffer: grow it
                    buffer.append(contentsOf: repeatElement(0, count: buffer.count))
                }
                let fdRaw = fd.raw
                let start = buffered
                let wanted = Int(min(Int64(buffer.count - start), max(0, size - filePosition)))
                let n = wanted == 0 ? 0 : buffer.withUnsafeMutableBytes { raw in
                    Glibc.read(fdRaw, raw.baseAddress! + start, wanted)  // the buffer is never empty
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SourceError("cannot read '\(path)': \(String(cString: strerror(errno)))")
                }
                if n == 0 {
                    try checkUnchanged()  // before the last, perhaps unfinished, line goes out
                    atEnd = true
                } else {
                    buffered += n
                    filePosition += Int64(n)
                }
            }
            if buffered == 0 { return false }
            // Hand out everything up to the last line end; at the end of the file, the rest too.
            let cut: Int
            if atEnd {
                cut = buffered
            } else if let lastNewline = buffer[0..<buffered].lastIndex(of: 10) {
                cut = lastNewline + 1
            } else {
                continue  // no whole line yet: read more
            }
            buffer.withUnsafeBytes { raw in body(UnsafeRawBufferPointer(rebasing: raw[0..<cut])) }
            position += Int64(cut)
            buffer.withUnsafeMutableBytes { raw in
                if cut < buffered, let base = raw.baseAddress { memmove(base, base + cut, buffered - cut) }
            }
            buffered -= cut
            return true
        }
    }

    /// Throws if the file's size or modification time differ from when it was opened.
    private func checkUnchanged() throws {
        var info = stat()
        guard fstat(fd.raw, &info) == 0 else {
            throw SourceError("cannot stat '\(path)': \(String(cString: strerror(errno)))")
        }
        let sizeNow = Int64(info.st_size)
        guard sizeNow != size || info.st_mtim.tv_sec != modified.tv_sec || info.st_mtim.tv_nsec != modified.tv_nsec else { return }
        let change = sizeNow != size ? "its size went from \(size) to \(sizeNow) bytes" : "it was modified (same size, \(size) bytes)"
        throw SourceError("input file '\(path)' changed while the run read it (\(change)): the input files of a bounded run must be complete before it starts and must not change; write the file completely (e.g. under another name, then rename it into place) and run again: the run resumes from its last checkpoint")
    }
}

/// Closes its descriptor when the last copy goes away.
final class FileDescriptor {
    let raw: Int32
    init(path: String) throws {
        raw = open(path, O_RDONLY | O_CLOEXEC)
        guard raw >= 0 else { throw SourceError("cannot open '\(path)': \(String(cString: strerror(errno)))") }
    }
    deinit { close(raw) }
}

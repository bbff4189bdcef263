import Foundation
import SluiceStorage

/// Which directory a file sink may write into. The first start writes `DIR/_sluice_output` (JSON:
/// job name, job fingerprint, the checkpoint store's id) durably, before any output; later starts
/// resume only with the same job and store. An absent or empty directory is taken; anything else
/// (files without the manifest, another job, another store) is refused, so that recovery, which
/// deletes the sink's uncommitted files, never touches files of someone else.
extension FileSink {
    static let manifestName = "_sluice_output"

    struct Manifest: Codable, Equatable {
        var job: String
        var fingerprint: String
        var store: String
    }

    /// Creates the directory if needed and checks that it can be written.
    static func prepare(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SinkError("file sink: cannot create the output directory '\(directory)': \(reason(error)); choose a directory you can write, or create it first")
        }
        guard access(directory, W_OK | X_OK) == 0 else {
            throw SinkError("file sink: the output directory '\(directory)' is not writable (\(String(cString: strerror(errno)))); make it writable or choose another --output")
        }
    }

    public func admit(_ owner: SinkOwner, statePath: String) throws {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw SinkError("file sink: cannot list the output directory '\(directory)': \(FileSink.reason(error))")
        }
        if entries.contains(FileSink.manifestName) {
            let manifest = try readManifest()
            if manifest.job != owner.job || manifest.fingerprint != owner.fingerprint {
                throw refusal("it holds the output of job '\(manifest.job)' (fingerprint \(manifest.fingerprint)), not of job '\(owner.job)' (fingerprint \(owner.fingerprint))")
            }
            if let store = owner.store, manifest.store != store {
                throw refusal("it was written with another checkpoint store (id \(manifest.store)); this run's store '\(PostgresURL.redact(statePath))' has id \(store). Run with the --state that wrote it")
            }
            return
        }
        let allowed = storeFiles(statePath)
        let foreign = entries.filter { !allowed.contains($0) && !FileSink.isManifestTemporary($0) }.sorted()
        guard foreign.isEmpty else {
            let shown = foreign.prefix(3).joined(separator: ", ") + (foreign.count > 3 ? ", …" : "")
            throw refusal("it is not empty (\(shown)) and is not a Sluice output: it has no \(FileSink.manifestName)")
        }
        if let store = owner.store {
            try writeManifest(Manifest(job: owner.job, fingerprint: owner.fingerprint, store: store))
        }
    }

    private func refusal(_ why: String) -> SinkError {
        SinkError("file sink: refusing the output directory '\(directory)': \(why). Nothing was written or removed; use an empty or new directory for --output")
    }

    private var manifestPath: String { (directory as NSString).appendingPathComponent(FileSink.manifestName) }

    private func readManifest() throws -> Manifest {
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw SinkError("file sink: cannot read '\(manifestPath)'")
        }
        do {
            return try JSONDecoder().decode(Manifest.self, from: data)
        } catch {
            throw refusal("its \(FileSink.manifestName) is not a Sluice manifest (\(FileSink.reason(error)))")
        }
    }

    /// Written aside, fsynced and renamed into place: a reader sees the whole manifest or none.
    /// Processes sharing the store (workers) may race here; they write the same content.
    private func writeManifest(_ manifest: Manifest) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = Array(try encoder.encode(manifest)) + [10]
        let temporary = (directory as NSString).appendingPathComponent("._sluice_output.\(UUID().uuidString).tmp")
        try writeDurably(bytes, to: temporary)
        guard rename(temporary, manifestPath) == 0 else {
            let cause = String(cString: strerror(errno))
            unlink(temporary)
            throw SinkError("file sink: cannot write '\(manifestPath)': \(cause)")
        }
        try syncDirectory(directory)
    }

    static func isManifestTemporary(_ name: String) -> Bool {
        name.hasPrefix("._sluice_output.") && name.hasSuffix(".tmp")
    }

    /// The names a SQLite checkpoint store inside the directory (the default `--state`) may have
    /// made before the manifest was written.
    private func storeFiles(_ statePath: String) -> Set<String> {
        guard !PostgresURL.isPostgres(statePath) else { return [] }
        let state = URL(fileURLWithPath: statePath)
        let parent = state.deletingLastPathComponent().standardizedFileURL.resolvingSymlinksInPath().path
        let own = URL(fileURLWithPath: directory).standardizedFileURL.resolvingSymlinksInPath().path
        guard parent == own else { return [] }
        let name = state.lastPathComponent
        return [name, name + "-wal", name + "-shm", name + "-journal"]
    }

    /// The cause of a Foundation file error, without its dictionary dump.
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        switch (ns.domain, ns.code) {
        case (NSCocoaErrorDomain, NSFileWriteNoPermissionError), (NSCocoaErrorDomain, NSFileReadNoPermissionError):
            return "permission denied"
        case (NSCocoaErrorDomain, NSFileWriteVolumeReadOnlyError):
            return "read-only file system"
        case (NSCocoaErrorDomain, NSFileNoSuchFileError), (NSCocoaErrorDomain, NSFileReadNoSuchFileError):
            return "no such file or directory"
        default:
            return ns.localizedDescription
        }
    }
}

import SluiceCore
import SluiceStorage

/// `postgres-cdc://USER@HOST:PORT/DB?table=T&partitions=P[&key=COLUMN][&slot=PREFIX][&publication=NAME]`:
/// change data capture of table T through logical replication (pgoutput). Partition p reads its own
/// replication slot `PREFIX_p<p>` and keeps the changes whose key is p modulo P (see PostgresCdcSource).
public struct CdcSpec: Sendable, Equatable {
    public var url: PostgresURL
    public var table: String
    public var keyColumn: String
    public var partitions: Int
    /// Slots are `<slotPrefix>_p<N>`.
    public var slotPrefix: String
    public var publication: String

    public static let scheme = "postgres-cdc://"
    static let usage = "write postgres-cdc://USER@HOST:PORT/DB?table=TABLE&partitions=P[&key=COLUMN][&slot=PREFIX][&publication=NAME]"

    public static func isCdc(_ uri: String) -> Bool { uri.hasPrefix(scheme) }

    /// `jobName` makes the default slot prefix (`sluice_<job>`), so two jobs on one table never share slots.
    public init(uri: String, jobName: String = "sluice") throws {
        let parsed = try PostgresTableURI(uri: uri, scheme: CdcSpec.scheme, defaultKey: "id", maxPartitions: 1_000,
                                          partitionsNote: " (each holds a replication slot)", usage: CdcSpec.usage)
        let prefix = parsed.url.options["slot"] ?? CdcSpec.slotName(for: jobName)
        guard CdcSpec.isSlotName(prefix), prefix.utf8.count + "_p".utf8.count + String(parsed.partitions - 1).utf8.count <= 63 else {
            throw parsed.error("slot= must be a slot name prefix of lowercase letters, digits and _ (with _p<N> at most 63 characters)")
        }
        let publication = parsed.url.options["publication"] ?? "sluice_\(parsed.table)"
        guard SQLIdentifier.isPlain(publication) else { throw parsed.error("publication= must name a publication (letters, digits, _)") }
        url = parsed.url
        table = parsed.table
        keyColumn = parsed.keyColumn
        partitions = parsed.partitions
        slotPrefix = prefix
        self.publication = publication
    }

    public func slot(partition: Int) -> String { "\(slotPrefix)_p\(partition)" }

    /// `sluice_` and the job's name in lowercase, anything but letters and digits as `_`, cut to 40.
    static func slotName(for job: String) -> String {
        let cleaned = job.lowercased().unicodeScalars.map { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") ? Character($0) : "_" }
        return String(("sluice_" + String(cleaned)).prefix(40))
    }

    static func isSlotName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }
}

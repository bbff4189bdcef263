/// A `postgres://` (or `postgresql://`) URL as Sluice takes it: libpq's URI syntax, plus Sluice's
/// own query parameters (`table`, `mode`, and for the outbox and CDC sources `partitions`, `key`, `slot`, `publication`), which are taken out before the URL reaches libpq.
/// `redacted` is the only form that is ever logged: it has no password.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    /// What libpq connects with (Sluice's parameters removed; a password, if any, still in it).
    public let connectionString: String
    /// The URL without its password, for logs and messages.
    public let redacted: String
    /// Sluice's parameters (`table=…`, `mode=…`).
    public let options: [String: String]
    /// `host:port/dbname` as written (empty parts stay empty): which database two URLs name.
    public let target: String

    static let sluiceParameters: Set<String> = ["table", "mode", "partitions", "key", "slot", "publication", "op"]

    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    public init(_ text: String) throws {
        guard PostgresURL.isPostgres(text), let schemeEnd = PostgresURL.afterScheme(text) else {
            throw StoreError("'\(PostgresURL.redact(text))' is not a PostgreSQL URL; write postgres://USER@HOST:PORT/DBNAME")
        }
        let scheme = String(text[..<schemeEnd])
        var rest = Substring(text[schemeEnd...])
        var query: [Substring] = []
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...].split(separator: "&")
            rest = rest[..<q]
        }
        var kept: [String] = []
        var options: [String: String] = [:]
        for pair in query {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0])
            let value = parts.count > 1 ? String(parts[1]) : ""
            if PostgresURL.sluiceParameters.contains(key) { options[key] = value } else { kept.append(String(pair)) }
        }
        self.options = options
        let base = scheme + rest
        connectionString = kept.isEmpty ? base : base + "?" + kept.joined(separator: "&")
        redacted = PostgresURL.redact(connectionString)
        // host:port/dbname: everything after the userinfo.
        let hostPart = rest.lastIndex(of: "@").map { rest[rest.index(after: $0)...] } ?? rest
        target = String(hostPart)
    }

    public var description: String { redacted }

    /// The index just after `://`, if there is one (no Foundation in this module).
    static func afterScheme(_ text: String) -> String.Index? {
        let chars = Array(text.utf8)
        guard chars.count >= 3 else { return nil }
        for i in 0...(chars.count - 3) where chars[i] == 58 && chars[i + 1] == 47 && chars[i + 2] == 47 {
            return text.utf8.index(text.utf8.startIndex, offsetBy: i + 3)
        }
        return nil
    }

    /// The URL with any password removed (`user:secret@` → `user@`, `password=…` dropped).
    public static func redact(_ text: String) -> String {
        guard let schemeEnd = afterScheme(text) else { return text }
        var result = String(text[..<schemeEnd])
        var rest = Substring(text[schemeEnd...])
        var query: Substring?
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            let user = userinfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            result += user + "@" + rest[rest.index(after: at)...]
        } else {
            result += rest
        }
        if let query {
            let kept = query.split(separator: "&").filter { !$0.lowercased().hasPrefix("password=") }
            if !kept.isEmpty { result += "?" + kept.joined(separator: "&") }
        }
        return result
    }
}

/// Ordered schema migrations for a SQLite database, as PostgreSQL's (`PostgresSchema`): each step
/// takes the schema from `version - 1` to `version`. All steps due run in one `BEGIN IMMEDIATE`
/// transaction that reads the stored version again first, so two processes opening one file
/// together neither race nor apply a step twice, and a failed step leaves the file as it was. A
/// database with a version newer than this binary knows is refused.
public struct SQLiteMigration: Sendable {
    public let version: Int64
    public let description: String
    public let apply: @Sendable (SQLiteDatabase) throws -> Void

    public init(version: Int64, description: String, apply: @escaping @Sendable (SQLiteDatabase) throws -> Void) {
        self.version = version
        self.description = description
        self.apply = apply
    }
}

public struct SQLiteSchema: Sendable {
    /// In order: versions 1, 2, 3, …
    public let migrations: [SQLiteMigration]
    /// Reads and writes the stored version (0: a new file).
    public let readVersion: @Sendable (SQLiteDatabase) throws -> Int64
    public let writeVersion: @Sendable (SQLiteDatabase, Int64) throws -> Void
    /// What the store is called in errors ("checkpoint store", "coordinator state").
    public let name: String

    public init(name: String, migrations: [SQLiteMigration],
                readVersion: @escaping @Sendable (SQLiteDatabase) throws -> Int64,
                writeVersion: @escaping @Sendable (SQLiteDatabase, Int64) throws -> Void) {
        precondition(migrations.enumerated().allSatisfy { Int64($0.offset + 1) == $0.element.version }, "migrations must be numbered 1, 2, 3, …")
        self.name = name
        self.migrations = migrations
        self.readVersion = readVersion
        self.writeVersion = writeVersion
    }

    public var currentVersion: Int64 { Int64(migrations.count) }

    /// Brings `db` to `currentVersion`; returns the version it had.
    @discardableResult
    public func migrate(_ db: SQLiteDatabase) throws -> Int64 {
        try db.transaction {
            let stored = try readVersion(db)
            guard stored <= currentVersion else {
                throw StoreError("\(name) '\(db.path)' has schema version \(stored); this sluice reads versions up to \(currentVersion): upgrade sluice, or use another file")
            }
            for migration in migrations where migration.version > stored {
                do {
                    try migration.apply(db)
                } catch {
                    throw StoreError("\(name) '\(db.path)': migration to version \(migration.version) (\(migration.description)) failed: \(error)")
                }
            }
            if stored < currentVersion { try writeVersion(db, currentVersion) }
            return stored
        }
    }

    /// The version kept in `PRAGMA user_version` (for files with no table of their own for it).
    public static func userVersion(_ db: SQLiteDatabase) throws -> Int64 {
        let stmt = try db.prepare("PRAGMA user_version")
        defer { stmt.reset() }
        return try stmt.step() ? stmt.int64(0) : 0
    }

    public static func setUserVersion(_ db: SQLiteDatabase, _ version: Int64) throws {
        try db.execute("PRAGMA user_version = \(version)")
    }
}

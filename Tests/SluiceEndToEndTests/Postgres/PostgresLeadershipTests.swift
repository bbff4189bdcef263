// The leadership held by process instance, on PostgreSQL (see CoordinatorStartupTests.swift).

import Foundation
import Testing

extension SluiceEndToEndTests.PostgresTests {
    @Test("PostgreSQL: two coordinators with the same default id: the leader epoch stays put, exactly the leader answers /readyz 200",
          .timeLimit(.minutes(3)))
    func sameNamedCoordinatorsOnPostgres() async throws {
        let cluster = try await Cluster(label: "pg-same-name", input: "", database: try TestPostgres.freshDatabase("samename"),
                                        inputURI: SluiceEndToEndTests.ClusterTests.tinyInput)
        defer { cluster.tearDown() }
        try await SluiceEndToEndTests.ClusterTests.sameNamedCoordinators(cluster)
    }

    @Test("PostgreSQL: a SIGKILLed coordinator restarted with the same --id takes over at once, long before its 30 s lease lapses",
          .timeLimit(.minutes(3)))
    func restartedCoordinatorOnPostgres() async throws {
        let cluster = try await Cluster(label: "pg-restart-same-id", input: "", database: try TestPostgres.freshDatabase("restartsameid"),
                                        inputURI: SluiceEndToEndTests.ClusterTests.tinyInput)
        defer { cluster.tearDown() }
        try await SluiceEndToEndTests.ClusterTests.restartTakesOver(cluster)
    }
}

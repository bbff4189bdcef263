// swift-tools-version: 6.1
// Sluice: a stream-processing cluster. See README.md and docs/DESIGN.md.
import PackageDescription

let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
    ],
    targets: [
        // System libraries (Debian: liblz4-dev, libsqlite3-dev, libpq-dev).
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CLibRDKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),

        // Events, watermarks, windows, aggregates, the window operator, the state codec. No I/O.
        .target(name: "SluiceCore", dependencies: ["CLZ4"], swiftSettings: [
            // The per-event loop touches class state; runtime exclusivity checks cost ~20% of it.
            // Debug builds (and so the tests) keep them.
            .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
        ]),
        // The seeded reference workload (Nexmark bids), replayable by partition and offset.
        .target(name: "SluiceWorkload", dependencies: ["SluiceCore"]),
        // The YAML job spec and its validation.
        .target(name: "SluiceJob", dependencies: ["SluiceCore", .product(name: "Yams", package: "Yams")]),
        // Checkpoint store with the fenced commit (SQLite, PostgreSQL through libpq).
        .target(name: "SluiceStorage", dependencies: ["SluiceCore", "CSQLite", "CLibPQ", .product(name: "Logging", package: "swift-log")]),
        // I/O drivers behind small Swift APIs: librdkafka (producer, consumer, transactions, mock cluster).
        .target(name: "SluiceDrivers", dependencies: ["CLibRDKafka"]),
        // Sources (file, gen, PostgreSQL outbox and CDC, Kafka) and sinks (file, sqlite, postgres, Kafka).
        .target(name: "SluiceConnectors", dependencies: ["SluiceCore", "SluiceJob", "SluiceWorkload", "SluiceStorage", "SluiceDrivers",
                                                 .product(name: "Logging", package: "swift-log")]),
        // The independent oracle: recomputes a job the plainest way, sharing no windowing code.
        .target(name: "SluiceOracle", dependencies: ["SluiceCore", "SluiceJob", "SluiceWorkload"]),
        // Partition pipelines, the checkpoint loop, the single-process runner, the worker's pure
        // state machine. Not the oracle.
        .target(name: "SluiceRuntime", dependencies: ["SluiceCore", "SluiceJob", "SluiceStorage", "SluiceConnectors", "SluiceWorkload",
                                              .product(name: "Metrics", package: "swift-metrics"),
                                              .product(name: "Logging", package: "swift-log")]),
        // `sluice verify`: a sink read back, compared with the oracle (workers do not link it).
        .target(name: "SluiceVerification", dependencies: ["SluiceOracle", "SluiceConnectors"]),
        // Development certificates (a CA, the coordinator, workers) and TLS configuration.
        .target(name: "SluiceTLS", dependencies: [
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
        // Metrics (Prometheus text), the /metrics, /healthz, /readyz endpoint, and the ports' connection limits.
        .target(name: "SluiceOps", dependencies: [
            "SluiceCore",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        // The control-plane protocol: .proto and its generated Swift (scripts/generate-protos), and
        // how a client dials the coordinator.
        .target(name: "SluiceProtocol", dependencies: [
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ], exclude: ["Protos", "README.md", "README-example.swift.txt"]),
        // Membership, leases with epochs, balanced sticky assignment; the service, its RPC, the
        // lease ledgers, leadership, and the status client.
        .target(name: "SluiceCoordinator", dependencies: [
            "SluiceCore", "SluiceStorage", "SluiceProtocol", "SluiceTLS", "SluiceWorkload", "SluiceOps",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
        // The worker daemon: joins the coordinator, runs the partitions it is granted.
        .target(name: "SluiceWorker", dependencies: [
            "SluiceRuntime", "SluiceProtocol", "SluiceTLS", "SluiceConnectors", "SluiceJob", "SluiceStorage", "SluiceOps",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
        // The chaos harness: suites, seeded schedules, fault injection and proxy, checks, report.
        .target(name: "SluiceChaos", dependencies: [
            "SluiceCore", "SluiceStorage", "SluiceRuntime", "SluiceOracle", "SluiceVerification", "SluiceConnectors", "SluiceJob",
            "SluiceWorkload", "SluiceProtocol", "SluiceTLS", "SluiceCoordinator", "SluiceDrivers",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
        // The deterministic simulator: the real CoordinatorCore and WorkerCore, a simulated network,
        // clocks and checkpoint store, one seeded scheduler, invariants after every step. No I/O.
        .target(name: "SluiceSimulation", dependencies: ["SluiceCore", "SluiceWorkload", "SluiceCoordinator", "SluiceRuntime", "SluiceConnectors"]),
        // The benchmarks behind `sluice bench` (figures as `name: value unit` lines).
        .target(name: "SluiceBench", dependencies: [
            "SluiceChaos", "SluiceCoordinator", "SluiceRuntime", "SluiceConnectors", "SluiceStorage", "SluiceJob", "SluiceCore",
            "SluiceWorkload", "SluiceProtocol", "SluiceTLS", "SluiceDrivers",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
        // The fuzz targets' entry functions (FuzzTargets), shared by the libFuzzer binary and the
        // tests that replay fuzz/regressions and fuzz/corpus.
        .target(name: "SluiceFuzzEntries", dependencies: ["SluiceCore", "SluiceJob", "SluiceConnectors", "SluiceProtocol", "SluiceCoordinator",
                                                  .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .executableTarget(name: "sluice", dependencies: [
            "SluiceBench", "SluiceSimulation", "SluiceVerification", "SluiceChaos", "SluiceRuntime", "SluiceCoordinator", "SluiceWorker", "SluiceTLS", "SluiceOps", "SluiceProtocol", "SluiceWorkload", "SluiceOracle", "SluiceConnectors", "SluiceJob", "SluiceCore", "SluiceStorage",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),

        .testTarget(name: "SluiceCoreTests", dependencies: ["SluiceFuzzEntries", "SluiceCore"]),
        .testTarget(name: "SluiceKafkaTests", dependencies: ["SluiceDrivers", "SluiceConnectors", "SluiceCore", "SluiceJob", "SluiceStorage"]),
        .testTarget(name: "SluiceJobTests", dependencies: ["SluiceFuzzEntries", "SluiceJob"]),
        .testTarget(name: "SluiceConnectorsTests", dependencies: ["SluiceFuzzEntries", "SluiceConnectors", "SluiceCore", "SluiceJob", "SluiceStorage", "SluiceOracle", "SluiceWorkload"]),
        .testTarget(name: "SluiceStorageTests", dependencies: ["SluiceStorage", "SluiceCore"], exclude: ["Fixtures"]),
        .testTarget(name: "SluiceOracleTests", dependencies: ["SluiceCore", "SluiceOracle", "SluiceJob", "SluiceWorkload", "SluiceVerification", "SluiceConnectors"]),
        .testTarget(name: "SluicePropertyTests", dependencies: ["SluiceCore", "SluiceJob", "SluiceOracle", "SluiceWorkload", "SluiceRuntime"]),
        .testTarget(name: "SluiceRuntimeTests", dependencies: ["SluiceRuntime", "SluiceConnectors", "SluiceStorage", "SluiceJob", "SluiceCore",
                                                        .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SluiceCoordinatorTests", dependencies: ["SluiceFuzzEntries", "SluiceCore", "SluiceCoordinator", "SluiceOps", "SluiceStorage", "SluiceWorkload"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "SluiceSimulationTests", dependencies: ["SluiceSimulation", "SluiceStorage", "SluiceCore", "SluiceCoordinator", "SluiceRuntime", "SluiceConnectors"]),
        .testTarget(name: "SluiceChaosTests", dependencies: ["SluiceChaos", "SluiceStorage", "SluiceWorkload"]),
        .testTarget(name: "SluiceEndToEndTests", dependencies: [
            "SluiceDrivers", "SluiceVerification", "SluiceRuntime", "SluiceOracle", "SluiceStorage", "SluiceConnectors", "SluiceJob", "SluiceWorkload", "SluiceCore",
            "SluiceProtocol", "SluiceTLS", "SluiceChaos",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            // Certificates of the wrong shape, made in the identity tests.
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer binary exists only for scripts/fuzz (SLUICE_FUZZ=1, built with -sanitize=fuzzer
// into .build-fuzz): its `main` runs libFuzzer's driver, which a normal build does not link.
// lld: ld.gold fails on this link (an internal error in gold), lld does not.
if Context.environment["SLUICE_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "SluiceFuzz", dependencies: ["SluiceFuzzEntries"],
                                             linkerSettings: [.unsafeFlags(["-use-ld=lld"])]))
}

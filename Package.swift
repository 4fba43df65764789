// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Hearth",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hearth", targets: ["hearth"]),
        .library(name: "HearthCore", targets: ["HearthCore"]),
        .library(name: "HearthServer", targets: ["HearthServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.2.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.5.0"),
        // Already a dependency of Hummingbird's; named for NIOEmbedded in the tests.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Pure Swift: JSON, paths, the persistent tree, push IDs, server values. No I/O.
        .target(name: "HearthCore"),
        // CRC-32C with the CPU's instruction where there is one (x86-64 SSE 4.2).
        .target(name: "CCRC32C"),
        // The system zlib (Debian: zlib1g-dev), for compressed snapshots.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The write log and snapshots. Files only.
        .target(
            name: "HearthStorage",
            dependencies: ["HearthCore", "CZlib", "CCRC32C", .product(name: "Logging", package: "swift-log")]
        ),
        // Namespaces in PostgreSQL instead of a data directory (`--storage postgres://…`).
        .target(
            name: "HearthPostgres",
            dependencies: [
                "HearthCore",
                "HearthStorage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The Hummingbird application: REST routes, namespaces, auth.
        .target(
            name: "HearthServer",
            dependencies: [
                "HearthCore",
                "HearthStorage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The console page, compiled into the binary (PackageResources.console_html).
            resources: [.embedInCode("Console/console.html")]
        ),
        // The command line: serve, bench helpers, data tools.
        .executableTarget(
            name: "hearth",
            dependencies: [
                "HearthCore",
                "HearthServer",
                "HearthStorage",
                "HearthPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Benchmarks that print figures (`make bench`); never tests.
        .executableTarget(
            name: "HearthBench",
            dependencies: ["HearthCore", "HearthStorage", "HearthTestSupport"]
        ),
        // Shared test helpers: live servers, data generators.
        .target(
            name: "HearthTestSupport",
            dependencies: [
                "HearthCore",
                "HearthServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "HearthCoreTests", dependencies: ["HearthCore", "HearthTestSupport"]),
        .testTarget(name: "HearthStorageTests", dependencies: ["HearthStorage", "HearthCore", "HearthTestSupport"]),
        .testTarget(
            name: "HearthServerTests",
            dependencies: [
                "HearthServer",
                "HearthTestSupport",
                "HearthPostgres",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)

// swift-tools-version:6.1
import PackageDescription

// Dependency direction is strict: RoomRingCore (pure) <- the NIO layers <- the `roomring` executable (wiring only).
let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOHTTP1", package: "swift-nio"),
    .product(name: "NIOWebSocket", package: "swift-nio"),
]

let package = Package(
    name: "roomring",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "roomring", targets: ["roomring"]),
        .library(name: "RoomRingCore", targets: ["RoomRingCore"]),
        .library(name: "RoomRingShard", targets: ["RoomRingShard"]),
        .library(name: "RoomRingProxy", targets: ["RoomRingProxy"]),
        .library(name: "RoomRingClient", targets: ["RoomRingClient"]),
        .library(name: "RoomRingRedis", targets: ["RoomRingRedis"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .target(name: "RoomRingCore", swiftSettings: upcoming),
        .target(name: "RoomRingSpawn", swiftSettings: upcoming),
        // epoll, eventfd and accept4 for the proxy's tunnel loops (Swift's Glibc module does not export them).
        .target(name: "CRoomRingSys"),
        .target(name: "RoomRingHTTP", dependencies: ["RoomRingCore", .product(name: "Logging", package: "swift-log")] + nio,
                swiftSettings: upcoming),
        .target(
            name: "RoomRingShard",
            dependencies: ["RoomRingCore", "RoomRingHTTP", "RoomRingClient", "RoomRingRedis", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")] + nio,
            resources: [.copy("Resources")],
            swiftSettings: upcoming
        ),
        .target(
            name: "RoomRingProxy",
            dependencies: ["RoomRingCore", "RoomRingHTTP", "RoomRingClient", "CRoomRingSys",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")] + nio,
            swiftSettings: upcoming
        ),
        // A small Redis client (RESP2 over NIO): no Redis package is available, and the shard's pub/sub mode needs
        // only pipelined commands, one subscriber connection and reconnects.
        .target(
            name: "RoomRingRedis",
            dependencies: ["RoomRingSpawn", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: upcoming
        ),
        .target(
            name: "RoomRingClient",
            dependencies: ["RoomRingCore"] + nio,
            swiftSettings: upcoming
        ),
        .target(
            name: "RoomRingBench",
            dependencies: ["RoomRingCore", "RoomRingClient", "RoomRingRedis", "RoomRingSpawn", .product(name: "Histogram", package: "hdrhistogram-swift")]
                + nio,
            resources: [.copy("Resources")],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "roomring",
            dependencies: [
                "RoomRingCore", "RoomRingHTTP", "RoomRingShard", "RoomRingProxy", "RoomRingClient", "RoomRingBench",
                "RoomRingRedis", "RoomRingSpawn",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ] + nio,
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RoomRingCLITests",
            dependencies: ["RoomRingCore", "RoomRingClient", "RoomRingRedis", "RoomRingSpawn"] + nio,
            swiftSettings: upcoming
        ),
        .testTarget(name: "RoomRingSpawnTests", dependencies: ["RoomRingSpawn"], swiftSettings: upcoming),
        .testTarget(name: "RoomRingCoreTests", dependencies: ["RoomRingCore"], swiftSettings: upcoming),
        .testTarget(name: "RoomRingBenchTests", dependencies: ["RoomRingBench", "RoomRingCore"], swiftSettings: upcoming),
        .testTarget(name: "RoomRingRedisTests", dependencies: ["RoomRingRedis"] + nio, swiftSettings: upcoming),
        .testTarget(
            name: "RoomRingProxyTests",
            dependencies: ["RoomRingCore", "RoomRingShard", "RoomRingProxy", "RoomRingClient", "RoomRingRedis",
                           "CRoomRingSys", .product(name: "Logging", package: "swift-log")] + nio,
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RoomRingShardTests",
            dependencies: ["RoomRingCore", "RoomRingHTTP", "RoomRingShard", "RoomRingClient", "RoomRingRedis", "RoomRingSpawn",
                           .product(name: "Logging", package: "swift-log")] + nio,
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RoomRingDeployTests",
            dependencies: ["RoomRingCore", "RoomRingShard", "RoomRingClient", "RoomRingSpawn",
                           .product(name: "Logging", package: "swift-log")] + nio,
            swiftSettings: upcoming
        ),
    ],
    swiftLanguageModes: [.v6]
)

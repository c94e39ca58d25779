// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Tasker",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TaskerRPC", targets: ["TaskerRPC"]),
        .library(name: "TaskerProto", targets: ["TaskerProto"]),
        .library(name: "TaskerWorker", targets: ["TaskerWorker"]),
        .library(name: "TaskerClient", targets: ["TaskerClient"]),
        .executable(name: "tasker", targets: ["tasker"]),
        .executable(name: "tasker-interop-server", targets: ["tasker-interop-server"]),
        .executable(name: "tasker-interop-client", targets: ["tasker-interop-client"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Without its default traits: no swift-configuration to build.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        // Hummingbird's own dependency: its channel gives the event streams their backpressure.
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // Hummingbird's own dependency: each long-lived component is a Service run by a ServiceGroup.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CNGHTTP2", pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(
            name: "CLibPQ", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]),
        .systemLibrary(
            name: "CHiredis", pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(
            name: "CCrypto", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),
        .target(
            name: "TaskerRPC",
            dependencies: [
                "CNGHTTP2", "TaskerMetrics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "TaskerTLS",
            dependencies: [
                "TaskerRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]),
        .target(
            name: "TaskerStore",
            dependencies: [
                "CLibPQ", "TaskerMetrics",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            resources: [.copy("Schema")]),
        .target(
            name: "TaskerQueue",
            dependencies: [
                "CHiredis", "TaskerMetrics",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]),
        .target(
            name: "TaskerEngine",
            dependencies: [
                "TaskerMetrics", "TaskerProto", "TaskerStore",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]),
        .target(
            name: "TaskerDispatch",
            dependencies: [
                "TaskerEngine", "TaskerMetrics", "TaskerProto", "TaskerQueue",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "TaskerClient",
            dependencies: [
                "TaskerProto", "TaskerRPC", "TaskerTLS",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]),
        .target(
            name: "TaskerWorker",
            dependencies: [
                "TaskerProto", "TaskerRPC", "TaskerTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(
            name: "TaskerMetrics",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]),
        .target(
            name: "TaskerHTTP",
            dependencies: [
                "TaskerRPC",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Dashboard/Assets")]),
        .target(
            name: "TaskerAuth",
            dependencies: [
                "CCrypto", "TaskerEngine", "TaskerRPC", "TaskerStore",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]),
        .target(
            name: "TaskerServer",
            dependencies: [
                "TaskerAuth", "TaskerDispatch", "TaskerEngine", "TaskerHTTP", "TaskerMetrics", "TaskerProto", "TaskerQueue", "TaskerRPC", "TaskerStore", "TaskerTLS",
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(
            name: "TaskerDev",
            dependencies: []),
        .target(
            name: "TaskerProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(
            name: "TaskerInterop",
            dependencies: [
                "TaskerRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Sources/Interop/TaskerInterop"),
        .executableTarget(
            name: "tasker-interop-server",
            dependencies: [
                "TaskerInterop", "TaskerRPC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Interop/tasker-interop-server"),
        .executableTarget(
            name: "tasker-interop-client",
            dependencies: [
                "TaskerInterop", "TaskerRPC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Interop/tasker-interop-client"),
        .executableTarget(
            name: "tasker",
            dependencies: [
                "TaskerAuth", "TaskerRPC", "TaskerServer", "TaskerEngine", "TaskerStore", "TaskerClient", "TaskerDev", "TaskerProto", "TaskerTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "tasker-example-ecommerce",
            dependencies: [
                "TaskerProto", "TaskerWorker",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "examples/ecommerce-worker"),
        .executableTarget(
            name: "tasker-bench-workers",
            dependencies: [
                "TaskerDev", "TaskerProto", "TaskerQueue", "TaskerRPC", "TaskerWorker",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "bench/workers"),
        .executableTarget(
            name: "tasker-fuzz",
            dependencies: [
                "TaskerEngine", "TaskerProto", "TaskerRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "fuzz",
            exclude: ["corpus"]),
        .testTarget(
            name: "TaskerEngineTests",
            dependencies: ["TaskerAuth", "TaskerEngine", "TaskerProto", "TaskerServer", "TaskerRPC", "TaskerStore", "TaskerDev"]),
        .testTarget(
            name: "TaskerDispatchTests",
            dependencies: [
                "TaskerAuth", "TaskerDispatch", "TaskerEngine", "TaskerProto", "TaskerQueue", "TaskerRPC", "TaskerServer", "TaskerStore",
                "TaskerWorker", "TaskerDev",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .testTarget(
            name: "TaskerQueueTests",
            dependencies: ["TaskerQueue", "TaskerDev", .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(
            name: "TaskerStoreTests",
            dependencies: ["TaskerStore", "TaskerDev"]),
        .testTarget(
            name: "TaskerRPCTests",
            dependencies: [
                "TaskerRPC",
                "TaskerInterop",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
    ]
)

// swift-tools-version:6.0
import PackageDescription

// The baseline for bench/unary-health.sh: grpc-swift-2 serving grpc.health.v1.Health/Check.
// A package of its own so that the main build never carries grpc-swift. The health messages
// are the main package's generated ones, linked in (Sources/…/health.pb.swift).
let package = Package(
    name: "grpc-swift-baseline",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
    ],
    targets: [
        .executableTarget(
            name: "grpc-swift-health-server",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ])
    ]
)

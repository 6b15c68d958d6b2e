// swift-tools-version:6.2
import PackageDescription

// The JSON parser alone, in process, under google/swift-benchmark. A package
// of its own so that the agent's builds and CI never fetch the harness.
let package = Package(
    name: "parser-bench",
    dependencies: [
        .package(name: "swift-qemu-ga", path: "../.."),
        .package(url: "https://github.com/google/swift-benchmark", exact: "0.1.2"),
    ],
    targets: [
        .executableTarget(
            name: "parser-bench",
            dependencies: [
                .product(name: "QMPJSON", package: "swift-qemu-ga"),
                .product(name: "Benchmark", package: "swift-benchmark"),
            ]
        ),
    ]
)

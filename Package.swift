// swift-tools-version:6.2
import PackageDescription

// The daemon runs entirely on the GLib main loop of the main thread, so its
// targets default to MainActor isolation; the JSON module stays nonisolated
// so that tests, fuzzers and benchmarks can use it freely.
let daemonSettings: [SwiftSetting] = [.defaultIsolation(MainActor.self)]

let package = Package(
    name: "swift-qemu-ga",
    products: [
        .executable(name: "qemu-ga", targets: ["qemu-ga"]),
    ],
    targets: [
        .systemLibrary(
            name: "CGLib",
            path: "Sources/CGLib",
            pkgConfig: "glib-2.0",
            providers: [.apt(["libglib2.0-dev"])]
        ),
        .systemLibrary(
            name: "CUdev",
            path: "Sources/CUdev",
            pkgConfig: "libudev",
            providers: [.apt(["libudev-dev"])]
        ),
        .target(name: "QMPJSON"),
        .target(
            name: "GuestAgent",
            dependencies: ["CGLib", "CUdev", "QMPJSON"],
            swiftSettings: daemonSettings
        ),
        .executableTarget(
            name: "qemu-ga",
            dependencies: ["GuestAgent"],
            swiftSettings: daemonSettings
        ),
        // Fuzz targets: replay a corpus in ordinary builds; Tests/fuzz/run
        // builds them with -sanitize=fuzzer,address and -DFUZZING.
        .target(name: "FuzzingSupport"),
        .executableTarget(name: "fuzz-json-parser", dependencies: ["FuzzingSupport", "QMPJSON"]),
        .executableTarget(
            name: "fuzz-dispatcher",
            dependencies: ["FuzzingSupport", "GuestAgent", "QMPJSON", "CGLib"],
            swiftSettings: daemonSettings
        ),
        .testTarget(name: "QMPJSONTests", dependencies: ["QMPJSON"]),
        .testTarget(
            name: "GuestAgentTests",
            dependencies: ["GuestAgent", "QMPJSON", "CGLib"],
            swiftSettings: daemonSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["QMPJSON"]
        ),
    ]
)

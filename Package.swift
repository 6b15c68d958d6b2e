// swift-tools-version:6.2
import PackageDescription

// The daemon runs entirely on the GLib main loop of the main thread, so its
// targets default to MainActor isolation; the JSON module stays nonisolated
// so that tests, fuzzers and benchmarks can use it freely.
//
// The agent's modules use no regular expressions: without the implicit
// import, _StringProcessing and _RegexParser (about 1 MB of code) stay out of
// the static binary.
let noStringProcessing: SwiftSetting = .unsafeFlags(["-Xfrontend", "-disable-implicit-string-processing-module-import"])
// Release builds of the agent's modules: every function gets a section of its
// own, so that the linker can order them (link/hot-functions.txt) and drop
// the unused ones (without it each source file's code is one section, moved
// as a whole); and the metadata of concrete generic types (the argument
// containers, arrays of our types) comes from accessors called with their
// conformances rather than from mangled names, which the runtime demangles
// and checks by scanning every conformance record of the binary on first
// use (start-up and the first request ran 350k instructions more).
let releaseCodeGeneration: SwiftSetting = .unsafeFlags(
    ["-Xfrontend", "-function-sections", "-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"],
    .when(configuration: .release))
// Everything runs on the main thread (no tasks, no threads), so the dynamic
// checks that a MainActor closure handed to generic code (map, filter, sort)
// runs there cannot fail; each cost about a thousand instructions per call.
// Release builds only: debug, test and sanitizer builds keep the checks, so
// that a closure that does run elsewhere traps in the tests.
let noDynamicIsolationChecks: SwiftSetting = .unsafeFlags(["-disable-dynamic-actor-isolation"], .when(configuration: .release))
let daemonSettings: [SwiftSetting] = [
    .defaultIsolation(MainActor.self), noStringProcessing, noDynamicIsolationChecks, releaseCodeGeneration,
]
// CGLib declares every GLib function newer than 2.56 (RHEL 8's, our floor)
// unavailable, which Swift reports as a deprecation: an error in the code
// that ships.
let agentSettings = daemonSettings + [.treatWarning("DeprecatedDeclaration", as: .error)]

// The release binary must run on a guest with nothing but glibc, libglib and
// libudev: `link/libstdc++.so` is a linker script that makes the Swift
// runtime's `-lstdc++` take the static libstdc++.a. lld puts the functions of
// `link/hot-functions.txt` (bench/hot-functions.py) together, so that few
// pages of code stay resident; `link/relro.ld` keeps .rodata read-only (Swift
// marks some of its constant data writable). `-z now` binds every imported
// function at start-up, so that the GOT is read-only too (full RELRO, as
// Debian's qemu-ga). Nothing looks the program's own symbols up at run time:
// no `-export-dynamic` (which the Swift driver adds for static binaries).
// (No packed relocations: glibc before 2.36 refuses them. `make build` links
// against an older glibc; see Makefile.)
let linkDirectory = Context.packageDirectory + "/Sources/qemu-ga/link"
let releaseLinkFlags = [
    "-L", linkDirectory,
    "-use-ld=lld",
    "-Xlinker", "-T", "-Xlinker", linkDirectory + "/relro.ld",
    "-Xlinker", "-z", "-Xlinker", "now",
    "-Xlinker", "--no-export-dynamic",
]
let releaseLinking: [LinkerSetting] = [
    .unsafeFlags(
        releaseLinkFlags + ["-Xlinker", "--symbol-ordering-file=" + linkDirectory + "/hot-functions.txt"],
        .when(configuration: .release)),
]

let package = Package(
    name: "swift-qemu-ga",
    products: [
        .executable(name: "qemu-ga", targets: ["qemu-ga"]),
        // For bench/parser, a package of its own that depends on this one.
        .library(name: "QMPJSON", targets: ["QMPJSON"]),
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
        .target(name: "QMPJSON", swiftSettings: [noStringProcessing, releaseCodeGeneration]),
        .target(
            name: "GuestAgent",
            dependencies: ["CGLib", "CUdev", "QMPJSON"],
            swiftSettings: agentSettings
        ),
        // Fixture machines for tests (never linked into qemu-ga): a tree that
        // stands for `/`, and the agent built on one.
        .target(name: "MachineFixtures", dependencies: ["GuestAgent"], swiftSettings: daemonSettings),
        .executableTarget(
            name: "qemu-ga-fixture", dependencies: ["GuestAgent", "MachineFixtures"], swiftSettings: daemonSettings),
        // argc and argv without /proc (see its header).
        .target(name: "CArguments"),
        .executableTarget(
            name: "qemu-ga",
            dependencies: ["GuestAgent", "CArguments"],
            exclude: ["link"],
            swiftSettings: agentSettings,
            linkerSettings: releaseLinking
        ),
        // bench/footprint.py's floor: the runtime and libraries alone.
        .executableTarget(
            name: "footprint-floor", dependencies: ["CGLib", "CUdev", "CArguments"], swiftSettings: [noStringProcessing],
            linkerSettings: [.unsafeFlags(releaseLinkFlags, .when(configuration: .release))]),
        // Fuzz targets: replay a corpus in ordinary builds; Tests/fuzz/run
        // builds them with -sanitize=fuzzer,address and -DFUZZING.
        .target(name: "FuzzingSupport"),
        .executableTarget(name: "fuzz-json-parser", dependencies: ["FuzzingSupport", "QMPJSON"]),
        .executableTarget(
            name: "fuzz-dispatcher",
            dependencies: ["FuzzingSupport", "GuestAgent", "MachineFixtures", "QMPJSON", "CGLib"],
            swiftSettings: daemonSettings
        ),
        .testTarget(name: "QMPJSONTests", dependencies: ["QMPJSON", "FuzzingSupport"]),
        // The trait of the tests that need the system (the reference agent,
        // root, loop devices), shared by the two targets that have some.
        .target(name: "TestRequirements", path: "Tests/TestRequirements"),
        .testTarget(
            name: "GuestAgentTests",
            dependencies: ["GuestAgent", "MachineFixtures", "QMPJSON", "CGLib", "TestRequirements"],
            swiftSettings: daemonSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["QMPJSON", "FuzzingSupport", "TestRequirements"]
        ),
    ]
)

// The JSON parser alone: QMPJSON's incremental parser fed as the agent feeds
// it (4 KiB reads), under google/swift-benchmark. After the harness's own
// table it prints one `throughput parser-<key> <MiB/s>` line per workload (input
// bytes over the median time), which bench/bench.py reads.

import Benchmark
import QMPJSON

/// What the agent reads at a time (ChannelConnection.readSize).
let chunkSize = 4096

/// A deterministic stream of base64 text (the payload's content does not
/// matter to the parser, only that it is a plain string).
func base64Text(count: Int) -> [UInt8] {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return alphabet[Int(state >> 58)]
    }
}

struct Workload {
    /// The harness's name, and the short one of the `throughput` line.
    let name: String
    let key: String
    let input: [UInt8]
    /// Top-level values the input holds, checked on every run.
    let values: Int
    /// Bytes per feed call; nil feeds the whole input at once.
    let chunk: Int?
}

/// One guest-file-write of 16 MiB of data (about 21 MiB of JSON).
let largeWrite: [UInt8] = Array(#"{"execute": "guest-file-write", "arguments": {"handle": 1000, "buf-b64": ""#.utf8)
    + base64Text(count: 16 << 20 / 3 * 4) + Array(#""}}"#.utf8)

/// The requests a host sends all the time, in a rotation: 20,000 of them.
let smallRequests: [UInt8] = {
    let requests = [
        #"{"execute":"guest-ping"}"#,
        #"{"execute":"guest-sync-delimited","arguments":{"id":1234567890}}"#,
        #"{"execute":"guest-fsfreeze-status"}"#,
        #"{"execute":"guest-file-read","arguments":{"handle":1000,"count":4096}}"#,
        #"{"execute": "guest-exec", "arguments": {"path": "/bin/sh", "arg": ["-c", "echo hi"], "capture-output": true}}"#,
        #"{"execute":"guest-exec-status","arguments":{"pid":4242}, "id": "req-17"}"#,
        #"{"execute":"guest-get-time"}"#,
        #"{"execute":"guest-set-time","arguments":{"time":1732000000000000000}}"#,
    ].map { Array($0.utf8) }
    return (0..<20_000).flatMap { requests[$0 % requests.count] }
}()

/// Nesting as deep as QEMU allows (1024): arrays, objects, and the two
/// mixed, 300 documents in all.
let nested: [UInt8] = {
    let depth = 1000
    let arrays = String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
    let objects = String(repeating: #"{"a":"#, count: depth) + "null" + String(repeating: "}", count: depth)
    let mixed = String(repeating: #"{"k":[1,"#, count: depth / 2) + "true" + String(repeating: "]}", count: depth / 2)
    return Array(String(repeating: arrays + objects + mixed, count: 100).utf8)
}()

let workloads = [
    Workload(name: "large write, 4 KiB reads", key: "large", input: largeWrite, values: 1, chunk: chunkSize),
    Workload(name: "large write, one buffer", key: "large-whole", input: largeWrite, values: 1, chunk: nil),
    Workload(name: "small requests", key: "small", input: smallRequests, values: 20_000, chunk: chunkSize),
    Workload(name: "nested 1000 deep", key: "nested", input: nested, values: 300, chunk: chunkSize),
]

/// Parses the whole input; fails loudly if the values are not all there.
func run(_ workload: Workload, _ parser: inout JSONMessageParser) {
    var values = 0
    workload.input.withUnsafeBytes { input in
        let step = workload.chunk ?? input.count
        var offset = 0
        while offset < input.count {
            let end = min(offset + step, input.count)
            for output in parser.feed(UnsafeRawBufferPointer(rebasing: input[offset..<end])) {
                guard case .value = output else { fatalError("\(workload.name): \(output)") }
                values += 1
            }
            offset = end
        }
    }
    precondition(values == workload.values, "\(workload.name): \(values) values, expected \(workload.values)")
}

let suite = BenchmarkSuite(name: "parser") { suite in
    for workload in workloads {
        var parser = JSONMessageParser()
        suite.benchmark(workload.name) { run(workload, &parser) }
    }
}

var runner = BenchmarkRunner(suites: [suite], settings: parseArguments(), customDefaults: defaultSettings)
try runner.run()

for result in runner.results {
    guard let workload = workloads.first(where: { $0.name == result.benchmarkName }) else { continue }
    let seconds = result.measurements.sorted()[result.measurements.count / 2] / 1e9
    let mibPerSecond = Double(workload.input.count) / seconds / Double(1 << 20)
    print("throughput parser-\(workload.key) \(mibPerSecond)")
}

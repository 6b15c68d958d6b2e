import Glibc

/// A fuzz target's test function, as libFuzzer calls it.
package typealias FuzzTest = @convention(c) (UnsafePointer<UInt8>, Int) -> Int32

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ test: FuzzTest) -> Int32

/// Hands the process to libFuzzer's driver. SwiftPM links executables with
/// their entry point renamed (`<module>_main`), so each fuzz target defines
/// that symbol and calls this.
package func runFuzzer(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ test: FuzzTest) -> Int32 {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv, test)
}
#endif

/// Without libFuzzer: runs `test` on each file named on the command line (a
/// corpus, or a crash to reproduce).
package func replayCorpus(_ paths: some Sequence<String>, _ test: FuzzTest) {
    for path in paths {
        guard let file = fopen(path, "rb") else {
            print("cannot open \(path)")
            exit(1)
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while case let count = fread(&chunk, 1, chunk.count, file), count > 0 { bytes += chunk[0..<count] }
        fclose(file)
        let size = bytes.count
        bytes.append(0)  // a valid pointer even for an empty file
        _ = bytes.withUnsafeBufferPointer { test($0.baseAddress!, size) }
    }
}

import CGLib
import CUdev
import Glibc

// The floor under the agent's idle footprint (bench/footprint.py, README
// "Footprint"): a Swift program linked as qemu-ga is (static Swift runtime,
// the same libraries and link settings), that only listens on `-p PATH` and
// runs an empty GLib main loop. Whatever it costs, any agent written in Swift
// on GLib costs too.
let arguments = CommandLine.arguments
guard let flag = arguments.firstIndex(of: "-p"), flag + 1 < arguments.count else {
    print("usage: footprint-floor -p SOCKET")
    exit(2)
}
let udev = udev_new()
var address = sockaddr_un()
address.sun_family = sa_family_t(AF_UNIX)
withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: arguments[flag + 1].utf8.prefix($0.count - 1)) }
let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
let bound = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
}
guard listener >= 0, bound == 0, listen(listener, 1) == 0 else {
    print("footprint-floor: cannot listen on \(arguments[flag + 1])")
    exit(1)
}
// As the agent does before its main loop: the start-up pages go.
cglib_release_clean_pages_when_idle()
g_main_loop_run(g_main_loop_new(nil, 0))
udev_unref(udev)

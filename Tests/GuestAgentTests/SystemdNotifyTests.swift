import Glibc
import Testing
@testable import GuestAgent

/// The environment systemd sets, as `SystemdNotifier` reads it. (The
/// messages themselves: `DaemonSystemdTests`, against the binary.)
@Suite @MainActor struct SystemdNotifyTests {
    private func notifier(_ environment: [String: String], pid: pid_t = 42) -> SystemdNotifier? {
        SystemdNotifier(environment: environment, pid: pid, log: GALog())
    }

    @Test func socketNames() {
        #expect(notifier([:]) == nil)
        #expect(notifier(["NOTIFY_SOCKET": ""]) == nil)
        #expect(notifier(["NOTIFY_SOCKET": "run/notify"]) == nil)
        #expect(notifier(["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 107)]) == nil)
        #expect(notifier(["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 106)]) != nil)
        #expect(notifier(["NOTIFY_SOCKET": "@" + String(repeating: "x", count: 107)]) != nil)
        #expect(notifier(["NOTIFY_SOCKET": "/run/systemd/notify"])?.watchdogMicroseconds == nil)
    }

    @Test(arguments: [
        (["WATCHDOG_USEC": "200000"], 200_000),
        (["WATCHDOG_USEC": "200000", "WATCHDOG_PID": "42"], 200_000),
        (["WATCHDOG_USEC": "200000", "WATCHDOG_PID": "43"], nil),
        (["WATCHDOG_USEC": "200000", "WATCHDOG_PID": "me"], nil),
        (["WATCHDOG_USEC": "0"], nil),
        (["WATCHDOG_USEC": "-5"], nil),
        (["WATCHDOG_USEC": "soon"], nil),
    ] as [([String: String], UInt64?)])
    func watchdog(environment: [String: String], expected: UInt64?) {
        let full = environment.merging(["NOTIFY_SOCKET": "@qga-unused"]) { first, _ in first }
        #expect(notifier(full, pid: 42)?.watchdogMicroseconds == expected)
    }

    @Test func readyIsSentOnce() throws {
        let name = "qga-notify-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: [0] + Array(name.utf8)) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + 1 + name.utf8.count)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        try #require(bound == 0)
        let sender = try #require(notifier(["NOTIFY_SOCKET": "@" + name]))
        sender.ready()
        sender.ready()
        sender.send("STOPPING=1")
        var received: [String] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count < 0 { break }
            received.append(String(decoding: buffer[0..<count], as: UTF8.self))
        }
        #expect(received == ["READY=1", "STOPPING=1"])
    }
}

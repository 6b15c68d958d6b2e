import Foundation
import Glibc
import Testing
@testable import GuestAgent

/// The uname members every guest-get-osinfo reply has, in schema order.
private func unameMembers() throws -> String {
    let kernel = try KernelIdentity.current()
    return #""kernel-release": "\#(kernel.release)", "kernel-version": "\#(kernel.version)", "machine": "\#(kernel.machine)""#
}

@Suite struct OSInfoTests {
    @Test func osReleaseWithEveryQuotingRule() throws {
        let tree = try FixtureTree()
        try tree.file("/etc/os-release", """
            # a comment
            NAME="Test \\"Quoted\\" OS"
            ID = spaced
            PRETTY_NAME='Single Quoted Pretty'
            VERSION=1.0 beta;x
            VERSION_ID="a\\\\b \\x"
            VARIANT=  lead
            VARIANT_ID="unterminated
            HOME_URL="https://example.org/"

            """)
        expectReturn("guest-get-osinfo", """
            {\(try unameMembers()), "id": "spaced", "name": "Test \\"Quoted\\" OS", "pretty-name": "'Single", \
            "version": "1.0", "version-id": "a\\\\b \\\\x", "variant": "lead", "variant-id": "unterminatedd"}
            """, agent: tree.agent())
    }

    @Test func theLibraryCopyIsTheFallback() throws {
        let tree = try FixtureTree()
        try tree.file("/usr/lib/os-release", "ID=debian\nVERSION_ID=\"12\"\n")
        expectReturn("guest-get-osinfo", #"{\#(try unameMembers()), "id": "debian", "version-id": "12"}"#, agent: tree.agent())
    }

    /// A file that does not parse, is not UTF-8 or is missing leaves the
    /// uname members only.
    @Test func unusableFilesLeaveTheKernelOnly() throws {
        let tree = try FixtureTree()
        let agent = tree.agent()
        let kernelOnly = "{\(try unameMembers())}"
        expectReturn("guest-get-osinfo", kernelOnly, agent: agent)
        // Either failure falls back to the library copy.
        try tree.file("/usr/lib/os-release", "ID=fallback\n")
        try tree.file("/etc/os-release", "ID=debian\nthis line has no equals sign\n")
        expectReturn("guest-get-osinfo", #"{\#(try unameMembers()), "id": "fallback"}"#, agent: agent)
        try tree.file("/etc/os-release", [0x49, 0x44, 0x3D, 0xFF, 0x0A])
        expectReturn("guest-get-osinfo", #"{\#(try unameMembers()), "id": "fallback"}"#, agent: agent)
        try FileManager.default.removeItem(atPath: tree.root + "/usr/lib/os-release")
        expectReturn("guest-get-osinfo", kernelOnly, agent: agent)
        // GLib reads the file as a C string.
        try tree.file("/etc/os-release", Array("ID=cut\n".utf8) + [0] + Array("NAME=after\n".utf8))
        expectReturn("guest-get-osinfo", #"{\#(try unameMembers()), "id": "cut"}"#, agent: agent)
    }

    @Test(arguments: [
        ("debian", "debian"), ("two words", "two"), ("a;b c", "a"), ("\"\"", ""), ("", ""),
        ("\"x\" trailing", "x"), ("\"a\\$b\\`c\"", "a$b`c"), ("\"a\\nb\"", "a\\nb"), ("\"end\\", "end\\\\"),
        ("\"tail\\\"", "tail\"\\\""), ("'single'", "'single'"),
    ])
    func valueCleanup(_ value: String, _ expected: String) {
        #expect(unquoteOSReleaseValue(value) == expected)
    }
}

@Suite struct UsersTests {
    private func record(_ type: Int32, _ user: String, line: String = "pts/0", host: String = "", seconds: Int32, microseconds: Int32 = 0) -> [UInt8] {
        var entry = utmpx()
        entry.ut_type = Int16(type)
        entry.ut_pid = 1234
        withUnsafeMutableBytes(of: &entry.ut_user) { $0.copyBytes(from: user.utf8.prefix($0.count)) }
        withUnsafeMutableBytes(of: &entry.ut_line) { $0.copyBytes(from: line.utf8.prefix($0.count)) }
        withUnsafeMutableBytes(of: &entry.ut_host) { $0.copyBytes(from: host.utf8.prefix($0.count)) }
        entry.ut_tv.tv_sec = seconds
        entry.ut_tv.tv_usec = microseconds
        return withUnsafeBytes(of: entry) { Array($0) }
    }

    /// Each user once with the earliest login, in order of first
    /// appearance; only user processes; empty names kept.
    @Test func loggedInUsers() throws {
        let tree = try FixtureTree()
        let longName = String(repeating: "n", count: 32)
        let utmp = record(Int32(BOOT_TIME), "reboot", seconds: 1_600_000_000)
            + record(Int32(USER_PROCESS), "alice", line: "tty1", seconds: 1_700_000_000, microseconds: 250_000)
            + record(Int32(USER_PROCESS), "alice", seconds: 1_690_000_000, microseconds: 500_000)
            + record(Int32(USER_PROCESS), "bob", seconds: 1_710_000_000)
            + record(Int32(DEAD_PROCESS), "carol", seconds: 1_600_000_000)
            + record(Int32(LOGIN_PROCESS), "LOGIN", seconds: 1_600_000_000)
            + record(Int32(USER_PROCESS), "", seconds: 1_700_000_001)
            + record(Int32(USER_PROCESS), longName, host: "example", seconds: 1_700_000_002)
            + record(Int32(USER_PROCESS), "alice", seconds: 1_695_000_000)
        try tree.file("/var/run/utmp", utmp)
        expectReturn("guest-get-users", """
            [{"user": "alice", "login-time": 1690000000.5}, {"user": "bob", "login-time": 1710000000}, \
            {"user": "", "login-time": 1700000001}, {"user": "\(longName)example", "login-time": 1700000002}]
            """, agent: tree.agent())
    }

    @Test func noUtmpNoUsers() throws {
        let tree = try FixtureTree()
        expectReturn("guest-get-users", "[]", agent: tree.agent())
    }
}

@Suite struct HostAndTimeTests {
    @Test func hostNameIsTheKernels() throws {
        var buffer = [CChar](repeating: 0, count: 256)
        #expect(gethostname(&buffer, 255) == 0)
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        expectReturn("guest-get-host-name", #"{"host-name": "\#(name)"}"#, agent: GAState(system: .host()))
    }

    @Test func timeInNanosecondsFromAMicrosecondClock() throws {
        func now() -> Int64 {
            var time = timespec()
            clock_gettime(CLOCK_REALTIME, &time)
            return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
        }
        let before = now() / 1000 * 1000
        let reply = replyLine("guest-get-time", agent: GAState(system: .host()))
        let after = now()
        let value = try #require(Int64(reply.dropFirst(#"{"return": "#.count).dropLast()))
        #expect(value % 1000 == 0)
        #expect((before...after).contains(value), "\(value) not in \(before)...\(after)")
    }

    /// GLib's local zone: this process's TZ, else /etc/localtime.
    @Test func timezoneOfThisProcess() throws {
        let zone = try #require(GLibTime.localZoneNow())
        var now = time(nil)
        var local = tm()
        localtime_r(&now, &local)
        #expect(Int(zone.offset) == local.tm_gmtoff)
        expectReturn("guest-get-timezone", #"{"zone": "\#(zone.abbreviation!)", "offset": \#(zone.offset)}"#, agent: GAState(system: .host()))
    }
}

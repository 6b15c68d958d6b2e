#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import QMPJSON
import Testing
import TestRequirements

extension NeedsSystem {
    /// The guest-information commands of 7.2 on this machine, asked of our agent
    /// and of the reference side by side. Answers that cannot change between two
    /// calls must be byte-identical; counters and clocks must agree in shape and
    /// only move forward; the documented newest differences (fsinfo's
    /// `total-bytes-privileged`, bind mounts listed once) are checked as such.
    @Suite("Differential: guest information vs qemu-ga 7.2")
    struct GuestInfoDifferentialTests {
        @Test("Same bytes", arguments: [
            "guest-get-osinfo", "guest-get-host-name", "guest-get-timezone", "guest-get-users", "guest-get-vcpus",
            "guest-get-memory-blocks", "guest-get-memory-block-info", "guest-get-disks",
        ])
        func sameBytes(_ command: String) throws {
            try withBothAgents { ours, reference in
                let request = bareRequest(command)
                let theirs = try reference.ask(request)
                #expect(try ours.ask(request) == theirs)
            }
        }

        @Test("Same time, from a microsecond clock")
        func time() throws {
            try withBothAgents { ours, reference in
                let request = bareRequest("guest-get-time")
                let before = try returnValue(reference.ask(request))
                let value = try returnValue(ours.ask(request))
                let after = try returnValue(reference.ask(request))
                guard case .int(let low) = before, case .int(let time) = value, case .int(let high) = after else {
                    Issue.record("not integers: \(before) \(value) \(after)")
                    return
                }
                #expect(time % 1000 == 0)
                #expect((low...high).contains(time))
            }
        }

        @Test("Same interfaces, addresses and counters")
        func interfaces() throws {
            try compareCounters("guest-network-get-interfaces", counters: [
                "rx-bytes", "rx-packets", "rx-errs", "rx-dropped", "tx-bytes", "tx-packets", "tx-errs", "tx-dropped",
            ])
        }

        @Test("Same disk statistics")
        func diskstats() throws {
            let counters: Set = [
                "read-sectors", "read-ios", "read-merges", "write-sectors", "write-ios", "write-merges",
                "discard-sectors", "discard-ios", "discard-merges", "flush-ios", "read-ticks", "write-ticks",
                "discard-ticks", "flush-ticks", "total-ticks", "weight-ticks",
            ]
            try compareCounters("guest-get-diskstats", counters: counters.union(["ios-pgr"]), monotonic: counters)
        }

        @Test("Same processor statistics")
        func cpustats() throws {
            try compareCounters("guest-get-cpustats", counters: [
                "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guestnice",
            ])
        }

        /// The same filesystems and disks; the used space may move between the
        /// two calls; ours adds `total-bytes-privileged` (newest).
        @Test("Same filesystems, plus total-bytes-privileged")
        func fsinfo() throws {
            try withBothAgents { ours, reference in
                try compareFilesystems(ours: ours, reference: reference, bindMount: nil)
            }
        }

        /// A bind mount in a private mount namespace: 7.2 lists the device once
        /// per mount, ours (as the newest) only its first mount.
        @Test("Bind mounts listed once")
        func bindMount() throws {
            let launcher: (String) -> [String] = { directory in
                let script = """
                    set -e
                    dir=$1; shift
                    mkdir "$dir/bound"
                    mount --bind "$dir" "$dir/bound"
                    exec "$@"
                    """
                return ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", directory]
            }
            let reference = try Agent(.reference, launcher: launcher)
            defer { reference.finish() }
            let ours = try Agent(.ours, launcher: launcher)
            defer { ours.finish() }
            try compareFilesystems(ours: ours, reference: reference, bindMount: reference.directory + "/bound")
        }

        @Test("Same time zone", arguments: ["America/New_York", "Asia/Kolkata", "UTC", "Europe/Berlin", "Nowhere/Invalid", ""])
        func timezone(_ zone: String) throws {
            try compareInEnvironment("guest-get-timezone", ["TZ": zone])
        }

        /// `$QGA_OS_RELEASE` names the file both read: every quoting rule, and
        /// files that cannot be used.
        @Test("Same os-release parsing", arguments: [
            "NAME=\"Test \\\"Quoted\\\" OS\"\nID = spaced\nPRETTY_NAME='Single Quoted Pretty'\nVERSION=1.0 beta;x\n"
                + "VERSION_ID=\"a\\\\b \\x\"\nVARIANT=  lead\nVARIANT_ID=\"unterminated\n",
            "# comment\nID=debian\n\n[other]\nNAME=ignored\n",
            "ID=\"a\\$b\\`c\\'d\"\nNAME=\"end\\\nVERSION=\"tail\\\"\n",
            "ID=debian\nno equals sign here\n",
            "ID=caf\u{E9}\nNAME=\"\u{201C}quoted\u{201D}\"\n",
            "ID=\u{FF}",
        ])
        func osRelease(_ content: String) throws {
            let file = try TemporaryFile(content == "ID=\u{FF}" ? [0x49, 0x44, 0x3D, 0xFF, 0x0A] : Array(content.utf8))
            try compareInEnvironment("guest-get-osinfo", ["QGA_OS_RELEASE": file.path])
        }

        @Test("Same os-release fallback for a missing file")
        func osReleaseMissing() throws {
            try compareInEnvironment("guest-get-osinfo", ["QGA_OS_RELEASE": "/nonexistent/os-release"])
        }

        /// A crafted utmp in a private /run (the host's is untouched): users
        /// once each with their earliest login, empty names kept.
        @Test("Same users from a crafted utmp")
        func users() throws {
            let utmp = TestUtmp.record(7, "alice", seconds: 1_700_000_000, microseconds: 250_000)
                + TestUtmp.record(7, "alice", seconds: 1_690_000_000, microseconds: 500_000)
                + TestUtmp.record(7, "bob", seconds: 1_710_000_000)
                + TestUtmp.record(8, "carol", seconds: 1_600_000_000)
                + TestUtmp.record(6, "LOGIN", seconds: 1_600_000_000)
                + TestUtmp.record(7, "", seconds: 1_700_000_001)
                + TestUtmp.record(7, String(repeating: "n", count: 32), host: "example", seconds: 1_700_000_002)
            let launcher: (String) -> [String] = { directory in
                let script = """
                    set -e
                    dir=$1; shift
                    mount -t tmpfs -o size=64k,mode=755 tmpfs /run
                    cp "$dir/utmp" /run/utmp
                    exec "$@"
                    """
                return ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", directory]
            }
            let prepare: (String) throws -> Void = { try writeFile($0 + "/utmp", utmp) }
            let reference = try Agent(.reference, prepare: prepare, launcher: launcher)
            defer { reference.finish() }
            let ours = try Agent(.ours, prepare: prepare, launcher: launcher)
            defer { ours.finish() }
            let request = bareRequest("guest-get-users")
            let answer = try reference.ask(request)
            #expect(answer.hasPrefix(#"{"return": [{"login-time": 1690000000.5, "user": "alice"}"#), "\(answer)")
            #expect(try ours.ask(request) == answer)
        }

        /// The newest commands 7.2 lacks are listed by ours in the newest
        /// schema's order, after everything 7.2 has.
        @Test("The newest commands are registered last")
        func newestCommandsAreLast() throws {
            let commands = try registeredCommands(.ours)
            #expect(commands.suffix(2) == ["guest-get-load", "guest-network-get-route"])
        }

        // MARK: helpers

        /// The same bytes from both agents started with `environment`.
        private func compareInEnvironment(_ command: String, _ environment: [String: String?]) throws {
            let reference = try Agent(.reference, environment: environment)
            defer { reference.finish() }
            let ours = try Agent(.ours, environment: environment)
            defer { ours.finish() }
            let request = bareRequest(command)
            let theirs = try reference.ask(request)
            #expect(try ours.ask(request) == theirs)
        }

        /// Asks the reference, then ours: the same structure and values, except
        /// `counters`, which only have to be numbers and, for `monotonic` ones,
        /// not smaller in ours.
        private func compareCounters(_ command: String, counters: Set<String>, monotonic: Set<String>? = nil) throws {
            try withBothAgents { ours, reference in
                let request = bareRequest(command)
                let theirs = try returnValue(reference.ask(request))
                let mine = try returnValue(ours.ask(request))
                compare(mine, theirs, counters: counters, monotonic: monotonic ?? counters, path: command)
            }
        }

        private func compareFilesystems(ours: Agent, reference: Agent, bindMount: String?) throws {
            let request = bareRequest("guest-get-fsinfo")
            guard case .array(var theirs) = try returnValue(reference.ask(request)),
                  case .array(let mine) = try returnValue(ours.ask(request)) else {
                Issue.record("guest-get-fsinfo did not return lists")
                return
            }
            if let bindMount {
                // The last mount is listed first.
                #expect(theirs.first.flatMap { $0.member("mountpoint") } == .string(bindMount), "7.2 lists the bind mount")
                theirs.removeFirst()
            }
            #expect(mine.count == theirs.count)
            for (filesystem, theirFilesystem) in zip(mine, theirs) {
                guard case .object(var object) = filesystem else { continue }
                let privileged = object["total-bytes-privileged"]
                object["total-bytes-privileged"] = nil
                if case .int(let total)? = object["total-bytes"] {
                    #expect(privileged.flatMap(\.integer).map { $0 >= total } == true, "total-bytes-privileged \(String(describing: privileged))")
                }
                compare(.object(object), theirFilesystem, counters: ["used-bytes"], monotonic: [], path: "fsinfo")
                if let used = object["used-bytes"]?.integer, let theirUsed = theirFilesystem.member("used-bytes")?.integer {
                    #expect(abs(used - theirUsed) < 256 << 20, "used bytes \(used) vs \(theirUsed)")
                }
            }
        }

        private func compare(_ mine: JSONValue, _ theirs: JSONValue, counters: Set<String>, monotonic: Set<String>,
                             path: String, sourceLocation: SourceLocation = #_sourceLocation) {
            switch (mine, theirs) {
            case (.object(let a), .object(let b)):
                #expect(a.keys == b.keys, "\(path): members", sourceLocation: sourceLocation)
                for member in a.members {
                    guard let other = b[member.key] else { continue }
                    let here = "\(path).\(member.key)"
                    if counters.contains(member.key) {
                        let (x, y) = (member.value.integer, other.integer)
                        #expect(x != nil && y != nil, "\(here): \(member.value) vs \(other)", sourceLocation: sourceLocation)
                        if monotonic.contains(member.key), let x, let y {
                            #expect(x >= y, "\(here): ours \(x) asked later than 7.2's \(y)", sourceLocation: sourceLocation)
                        }
                    } else {
                        compare(member.value, other, counters: counters, monotonic: monotonic, path: here, sourceLocation: sourceLocation)
                    }
                }
            case (.array(let a), .array(let b)):
                #expect(a.count == b.count, "\(path): lengths", sourceLocation: sourceLocation)
                for (index, (x, y)) in zip(a, b).enumerated() {
                    compare(x, y, counters: counters, monotonic: monotonic, path: "\(path)[\(index)]", sourceLocation: sourceLocation)
                }
            default:
                #expect(mine == theirs, "\(path)", sourceLocation: sourceLocation)
            }
        }
    }
}

/// The value of a `{"return": ...}` reply line.
func returnValue(_ reply: String) throws -> JSONValue {
    var parser = JSONMessageParser()
    guard case .value(let value)? = parser.feed(Array(reply.utf8)).first, let result = value.member("return") else {
        throw HarnessError("not a return: \(reply)")
    }
    return result
}

extension JSONValue {
    func member(_ key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    /// A JSON integer as a (possibly wrapped) Int64, for ordering counters.
    var integer: Int64? {
        switch self {
        case .int(let value): value
        case .uint(let value): Int64(bitPattern: value)
        default: nil
        }
    }
}

/// A file that exists for the life of the value.
final class TemporaryFile {
    let path: String

    init(_ bytes: Bytes) throws {
        var template = Array("/tmp/qga-it-file.XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw HarnessError("mkstemp: \(errnoText())") }
        close(fd)
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try writeFile(path, bytes)
    }

    deinit { unlink(path) }
}

/// utmp records as glibc writes them (`struct utmpx`, 384 bytes on Linux).
enum TestUtmp {
    static func record(_ type: Int16, _ user: String, host: String = "", seconds: Int32, microseconds: Int32 = 0) -> Bytes {
        var entry = utmpx()
        entry.ut_type = type
        entry.ut_pid = 4321
        withUnsafeMutableBytes(of: &entry.ut_line) { $0.copyBytes(from: "pts/1".utf8) }
        withUnsafeMutableBytes(of: &entry.ut_user) { $0.copyBytes(from: user.utf8.prefix($0.count)) }
        withUnsafeMutableBytes(of: &entry.ut_host) { $0.copyBytes(from: host.utf8.prefix($0.count)) }
        entry.ut_tv.tv_sec = seconds
        entry.ut_tv.tv_usec = microseconds
        return withUnsafeBytes(of: entry) { Bytes($0) }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import TestRequirements

extension NeedsSystem {
    /// The control commands against the reference 7.2, only where that is safe:
    /// requests 7.2 refuses before acting (argument errors, invalid modes and
    /// times, forbidden characters, unknown users, invalid keys), run with
    /// CAP_SYS_ADMIN, CAP_SYS_TIME and CAP_SYS_BOOT taken away so that even a
    /// mistake could not freeze, trim, set the clock or reboot; and the SSH-key
    /// files of a made-up user whose passwd entry exists only in a private mount
    /// namespace of the reference, with its home in a temporary directory.
    @Suite("Control: differential against qemu-ga 7.2")
    struct ControlDifferentialTests {
        /// Requests that 7.2 answers without changing anything, with texts
        /// identical in 7.2 and the newest qemu-ga.
        static let refusals: [String] = [
            // guest-set-time: the year must be 1970...2069 (checked before settimeofday)
            #"{"execute":"guest-set-time","arguments":{"time":4102444800000000000}}"#,
            #"{"execute":"guest-set-time","arguments":{"time":-1000000000}}"#,
            #"{"execute":"guest-set-time","arguments":{"time":-9223372036854775808}}"#,
            #"{"execute":"guest-set-time","arguments":{"time":9223372036854775807}}"#,
            #"{"execute":"guest-set-time","arguments":{"time":"now"}}"#,
            #"{"execute":"guest-set-time","arguments":{"time":1.5}}"#,
            // guest-shutdown: the mode is checked first
            #"{"execute":"guest-shutdown","arguments":{"mode":"Halt"}}"#,
            #"{"execute":"guest-shutdown","arguments":{"mode":""}}"#,
            #"{"execute":"guest-shutdown","arguments":{"mode":"sleep"},"id":3}"#,
            #"{"execute":"guest-shutdown","arguments":{"mode":1}}"#,
            // guest-set-user-password: decoding and the forbidden characters
            #"{"execute":"guest-set-user-password","arguments":{"username":"qga-no-such-user","password":"*","crypted":false}}"#,
            #"{"execute":"guest-set-user-password","arguments":{"username":"qga-no-such-user","password":"YQpi","crypted":false}}"#,
            #"{"execute":"guest-set-user-password","arguments":{"username":"qga-no:such-user","password":"YQ==","crypted":true}}"#,
            #"{"execute":"guest-set-user-password","arguments":{"username":"qga-no-such-user\n","password":"YQ==","crypted":false}}"#,
            #"{"execute":"guest-set-user-password","arguments":{"username":"qga-no-such-user","password":"YQ=="}}"#,
            // guest-ssh-*: keys are checked before the user is looked up
            ##"{"execute":"guest-ssh-add-authorized-keys","arguments":{"username":"qga-no-such-user","keys":["ok","#no"]}}"##,
            #"{"execute":"guest-ssh-remove-authorized-keys","arguments":{"username":"qga-no-such-user","keys":["a\nb"]}}"#,
            #"{"execute":"guest-ssh-add-authorized-keys","arguments":{"username":"qga-no-such-user","keys":[]}}"#,
            #"{"execute":"guest-ssh-remove-authorized-keys","arguments":{"username":"qga-no-such-user","keys":["k"]}}"#,
            #"{"execute":"guest-ssh-get-authorized-keys","arguments":{"username":"qga-no-such-user"}}"#,
            #"{"execute":"guest-ssh-add-authorized-keys","arguments":{"username":"qga-no-such-user","keys":["k"],"reset":"yes"}}"#,
            #"{"execute":"guest-ssh-get-authorized-keys"}"#,
            // guest-set-vcpus, guest-set-memory-blocks: empty lists, argument errors
            #"{"execute":"guest-set-vcpus","arguments":{"vcpus":[]}}"#,
            #"{"execute":"guest-set-vcpus","arguments":{"vcpus":[{"logical-id":1}]}}"#,
            #"{"execute":"guest-set-vcpus"}"#,
            #"{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[]}}"#,
            #"{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[{"online":true}]}}"#,
            // guest-fsfreeze-*, guest-fstrim: argument errors, status
            #"{"execute":"guest-fsfreeze-status"}"#,
            #"{"execute":"guest-fsfreeze-status","arguments":{"x":1}}"#,
            #"{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":"/"}}"#,
            #"{"execute":"guest-fsfreeze-freeze-list","arguments":{"mountpoints":[1]}}"#,
            #"{"execute":"guest-fstrim","arguments":{"minimum":"0"}}"#,
        ]

        @Test("Refusals: the same bytes from ours (fixture machine) and 7.2 (without the capabilities to act)",
              arguments: refusals)
        func refusal(request: String) throws {
            let fixture = try FixtureRoot()
            let reference = try Agent(.reference, launcher: withoutMachineCapabilities)
            defer { reference.finish() }
            try withFixtureAgent(fixture) { ours throws in
                let expected = try reference.ask(request)
                // 7.2 checks for /sbin/hwclock before the time (newest: no such
                // check), so without it only its refusal differs.
                if request.contains(#""guest-set-time","arguments":{"time":"#), !request.contains(#""now""#),
                   !request.contains("1.5"), access("/sbin/hwclock", X_OK) != 0 {
                    #expect(expected == Reply.error("this feature or command is not currently supported"))
                    #expect(try ours.ask(request) == Reply.error("Invalid time"))
                } else {
                    #expect(try ours.ask(request) == expected)
                }
            }
        }

        /// A memory block that does not exist: 7.2 only fails to open its
        /// directory (this machine's sysfs is read, never written); ours reads a
        /// fixture memory directory without it.
        @Test("guest-set-memory-blocks of blocks that do not exist: not-found, error-code 2")
        func memoryBlocksNotFound() throws {
            let fixture = try FixtureRoot()
            try makeDirectory(fixture.path("/sys/devices/system/memory"))
            let request = #"{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[{"phys-index":999999999,"online":true},{"phys-index":18446744073709551615,"online":false}]}}"#
            let reference = try Agent(.reference, launcher: withoutMachineCapabilities)
            defer { reference.finish() }
            try withFixtureAgent(fixture) { ours throws in
                let expected = try reference.ask(request)
                #expect(expected.contains(#""not-found""#), "\(expected)")
                #expect(try ours.ask(request) == expected)
            }
        }

        // MARK: SSH keys of a made-up user

        static let uid: uid_t = 2345
        static let gid: gid_t = 3456

        /// Runs 7.2 in a private mount namespace whose /etc/passwd (a bind
        /// mount of DIR/passwd) knows only `qgatest`, at home in DIR/home.
        static func referenceWithFakeUser(_ directory: String) -> [String] {
            let script = """
                set -e
                dir=$1; shift
                mount --bind "$dir/passwd" /etc/passwd
                exec "$@"
                """
            return ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", directory]
        }

        /// What the host can see of the user's files after a step.
        struct Files: Equatable, CustomStringConvertible {
            var keys: String?
            var keysMode: mode_t?
            var keysOwner: String?
            var sshMode: mode_t?
            var sshOwner: String?

            init(home: String) {
                var info = stat()
                let keysPath = home + "/.ssh/authorized_keys"
                keys = readFile(keysPath).map { String(decoding: $0, as: UTF8.self) }
                if lstat(keysPath, &info) == 0 {
                    keysMode = info.st_mode & 0o7777
                    keysOwner = "\(info.st_uid):\(info.st_gid)"
                }
                if lstat(home + "/.ssh", &info) == 0 {
                    sshMode = info.st_mode & 0o7777
                    sshOwner = "\(info.st_uid):\(info.st_gid)"
                }
            }

            var description: String {
                "keys \(keys.map { "\"\($0)\"" } ?? "-") \(keysMode.map { String($0, radix: 8) } ?? "-") \(keysOwner ?? "-"), "
                    + ".ssh \(sshMode.map { String($0, radix: 8) } ?? "-") \(sshOwner ?? "-")"
            }
        }

        /// One step: an optional change to the files made by the test, then a request.
        typealias Step = (prepare: (@Sendable (String) throws -> Void)?, request: String)

        static func add(_ keys: String, reset: String = "") -> String {
            #"{"execute":"guest-ssh-add-authorized-keys","arguments":{"username":"qgatest","keys":[\#(keys)]\#(reset)}}"#
        }

        static func remove(_ keys: String) -> String {
            #"{"execute":"guest-ssh-remove-authorized-keys","arguments":{"username":"qgatest","keys":[\#(keys)]}}"#
        }

        static let get = #"{"execute":"guest-ssh-get-authorized-keys","arguments":{"username":"qgatest"}}"#

        static func setKeys(_ text: String, mode: mode_t = 0o644) -> @Sendable (String) throws -> Void {
            { home in
                try makeDirectory(home + "/.ssh")
                try writeFile(home + "/.ssh/authorized_keys", Bytes(text.utf8))
                chmod(home + "/.ssh/authorized_keys", mode)
                chown(home + "/.ssh/authorized_keys", 0, 0)
            }
        }

        static let steps: [Step] = [
            (nil, get),
            (nil, remove(#""k""#)),
            (nil, add(#""ssh-rsa AAAA1 one@x""#)),
            (nil, add(#""k2","ssh-rsa AAAA1 one@x","k2","""#)),
            (nil, get),
            (nil, remove(#""ssh-rsa AAAA1 one@x","absent""#)),
            (setKeys("# comment\n  ssh-rsa AAAA3 three  \n\n\n"), add(#""ssh-rsa AAAA4 four","ssh-rsa AAAA3 three""#)),
            (nil, get),
            (nil, remove(#""""#)),
            (setKeys("a\nb\na\n", mode: 0o666), remove(#""a""#)),
            (nil, add(#""r1","r1","r2""#, reset: #","reset":true"#)),
            (nil, add("", reset: #","reset":false"#)),
            (nil, add("", reset: #","reset":true"#)),
            (nil, get),
            ({ home in unlink(home + "/.ssh/authorized_keys"); rmdir(home + "/.ssh") }, add(#""again""#, reset: #","reset":true"#)),
        ]

        /// Every reply with the home directory's real path replaced, and the
        /// files after every step.
        static func run(_ agent: Agent, home: String) throws -> [String] {
            try steps.map { step in
                try step.prepare?(home)
                let reply = try agent.ask(step.request).replacing(home, with: "HOME")
                return reply + " " + Files(home: home).description
            }
        }

        @Test("guest-ssh-*: the same replies and the same files, modes and owners as 7.2, step by step")
        func sshKeys() throws {
            let fixture = try FixtureRoot()
            let entry = { (home: String) in "qgatest:x:\(Self.uid):\(Self.gid):QGA test:\(home):/bin/sh\n" }
            try fixture.write("/etc/passwd", entry("/home/qgatest"))
            try makeDirectory(fixture.path("/home/qgatest"))
            let ours = try withFixtureAgent(fixture) { agent throws in try Self.run(agent, home: fixture.path("/home/qgatest")) }

            var home = ""
            let reference = try Agent(.reference, prepare: { directory in
                home = directory + "/home/qgatest"
                try makeDirectory(home)
                try writeFile(directory + "/passwd", Bytes(entry(home).utf8))
            }, launcher: Self.referenceWithFakeUser)
            defer { reference.finish() }
            let theirs = try Self.run(reference, home: home)
            #expect(ours.count == theirs.count)
            for (index, (mine, expected)) in zip(ours, theirs).enumerated() {
                #expect(mine == expected, "step \(index): \(Self.steps[index].request)")
            }
            // The real passwd database never knew the user.
            #expect(getpwnam("qgatest") == nil)
        }
    }
}

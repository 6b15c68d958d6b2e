#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing

// The one rule of the test suite: a test that needs more of the machine than
// the build does (the reference agent, root, loop devices, the tools of the
// test packages) lives in its target's `NeedsSystem` group, which carries
// the trait below. Everything else runs anywhere `swift build` does.

/// What the `NeedsSystem` tests need, and whether this machine has it.
package enum SystemRequirements {
    /// The reference qemu-ga 7.2: `$QGA_REFERENCE`, else Debian's.
    package static var referenceAgent: String {
        if let value = getenv("QGA_REFERENCE"), value.pointee != 0 { return String(cString: value) }
        return "/usr/sbin/qemu-ga"
    }

    /// With `QGA_TESTS_REQUIRE_SYSTEM=1` (`make check`, so CI) a missing
    /// requirement fails the run instead of skipping the group.
    package static var required: Bool {
        getenv("QGA_TESTS_REQUIRE_SYSTEM").map { String(cString: $0) == "1" } ?? false
    }

    /// What this machine lacks, one phrase each; empty when it has it all.
    package static let missing: [String] = {
        var missing: [String] = []
        if access(referenceAgent, X_OK) != 0 { missing.append("the reference qemu-ga 7.2 at \(referenceAgent) (qemu-guest-agent)") }
        if geteuid() != 0 { missing.append("root") }
        if access("/dev/loop-control", R_OK | W_OK) != 0 { missing.append("loop devices (/dev/loop-control)") }
        for (tool, package) in [("/sbin/mkfs.ext4", "e2fsprogs"), ("/usr/bin/chattr", "e2fsprogs"), ("/usr/sbin/ip", "iproute2")]
        where access(tool, X_OK) != 0 {
            missing.append("\(tool) (\(package))")
        }
        return missing
    }()

    static var summary: String {
        "needs " + missing.joined(separator: ", ")
            + ": `make check` installs the packages (make deps) and runs every test; run it as root on a machine with loop devices"
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "QGA_TESTS_REQUIRE_SYSTEM=1, but the NeedsSystem tests cannot run here: " + SystemRequirements.summary
        }
    }
}

extension Trait where Self == ConditionTrait {
    /// The trait of the `NeedsSystem` groups: they run where the machine has
    /// everything `SystemRequirements` lists; elsewhere they are skipped with
    /// what is missing, or fail with it under `QGA_TESTS_REQUIRE_SYSTEM=1`.
    package static var systemRequirements: Self {
        .enabled(Comment(rawValue: SystemRequirements.missing.isEmpty ? "" : SystemRequirements.summary)) {
            if SystemRequirements.missing.isEmpty { return true }
            if SystemRequirements.required { throw SystemRequirements.Missing() }
            return false
        }
    }
}

import Testing
import TestRequirements

/// The tests of this target that need more than the build: the reference
/// qemu-ga 7.2, root, loop devices, the test packages' tools (see
/// `SystemRequirements`). `make check` runs them; a plain `swift test` where
/// something is missing skips them, saying what.
@Suite("Needs the reference qemu-ga 7.2, root and loop devices", .systemRequirements)
enum NeedsSystem {}

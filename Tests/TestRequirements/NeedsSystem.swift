import Testing

/// The group of every test that needs more than the build: the reference
/// qemu-ga 7.2, root, loop devices, the test packages' tools (see
/// `SystemRequirements`). Both test targets put such tests here, with
/// `extension NeedsSystem { @Suite struct ... }` in their `NeedsSystem/`
/// folders (a nested suite's name must be unique across the two targets).
/// `make check` runs them; a plain `swift test` on a machine that lacks
/// something skips the group, saying what.
@Suite("Needs the reference qemu-ga 7.2, root and loop devices", .systemRequirements)
package enum NeedsSystem {}

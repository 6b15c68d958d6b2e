import GuestAgent
import Glibc
import MachineFixtures

// The agent on a fixture machine, for the integration tests only (never
// packaged or installed): the same daemon as qemu-ga, managing the tree
// named by QGA_SYSTEM_ROOT instead of the machine it runs on, so that tests
// can drive commands that change a machine (shutdown, set-time, passwords,
// SSH keys) through the real binary's start-up, channel and logging.
guard let root = getenv("QGA_SYSTEM_ROOT").map({ String(cString: $0) }), root.count > 1 else {
    print("qemu-ga-fixture: QGA_SYSTEM_ROOT must name the fixture tree that stands for /")
    exit(2)
}
let searchPath = getenv("PATH").map { String(cString: $0) } ?? SystemEnvironment.defaultSearchPath
exit(GuestAgentDaemon.main(arguments: CommandLine.arguments, system: .fixture(root: root, searchPath: searchPath)))

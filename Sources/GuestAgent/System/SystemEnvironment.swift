import Glibc

/// The machine the agent manages, as commands see it: where its files are,
/// where its programs are found, its kernel (`calls`) and the facts that
/// have no file to read (`facts`).
///
/// The daemon is given `host()`, the machine it runs on. Tests build a
/// fixture machine instead (a tree standing for `/`, fake programs, a clock
/// that is a file; the module MachineFixtures) and hand it in the same way,
/// so that commands which read or change the machine run against trees and
/// fake programs. The shipped agent contains no way to switch to one.
package struct SystemEnvironment: Sendable {
    /// Prepended to each absolute path of the machine: empty on the host,
    /// a fixture tree's directory in tests.
    package let pathPrefix: String
    /// The `PATH` that programs named without a slash are searched in; each
    /// directory is a directory of the managed machine.
    package var searchPath: String
    package let calls: any SystemCalls
    package let facts: any MachineFacts

    /// glibc's search path when `PATH` is unset.
    package static let defaultSearchPath = "/bin:/usr/bin"

    package init(pathPrefix: String, searchPath: String, calls: any SystemCalls, facts: any MachineFacts) {
        self.pathPrefix = pathPrefix.hasSuffix("/") ? String(pathPrefix.dropLast()) : pathPrefix
        self.searchPath = searchPath
        self.calls = calls
        self.facts = facts
    }

    /// The machine this process runs on.
    package static func host(searchPath: String = defaultSearchPath) -> SystemEnvironment {
        SystemEnvironment(pathPrefix: "", searchPath: searchPath, calls: HostSystemCalls(), facts: HostFacts())
    }

    /// The machine this process runs on, with the `PATH` it was started with.
    package static func current() -> SystemEnvironment {
        host(searchPath: ProcessEnvironment.value("PATH") ?? defaultSearchPath)
    }

    /// The real location of an absolute path of the managed machine, e.g.
    /// `/proc/self/mountinfo`, a mount point read from it, or `/sbin/poweroff`.
    package func path(_ absolutePath: String) -> String {
        pathPrefix + absolutePath
    }

    /// The file to execute for a program as qemu-ga names it (execvp's
    /// rules): a name with a slash is that path, one without is searched in
    /// `searchPath` (an empty or relative entry is relative to the working
    /// directory); absolute paths are the machine's (see `path`). Throws
    /// what exec would fail with: ENOENT, or EACCES when only unexecutable
    /// candidates exist.
    func executable(_ program: String) throws(SystemError) -> String {
        if program.contains("/") {
            return program.hasPrefix("/") ? path(program) : program
        }
        var denied = false
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = directory.hasPrefix("/")
                ? path(String(directory)) + "/" + program
                : (directory.isEmpty ? "." : String(directory)) + "/" + program
            guard let status = try? calls.status(candidate) else { continue }
            if status.kind == .regular && calls.isExecutable(candidate) { return candidate }
            denied = true
        }
        throw denied ? .permissionDenied : .noSuchFile
    }
}

/// What the agent learns about the machine from calls rather than files:
/// network interfaces, udev's view of block devices, the user database.
/// Each source serves one command.
package protocol MachineFacts: Sendable {
    func interfaceSource(on system: SystemEnvironment) -> any InterfaceSource
    func blockDeviceFacts(on system: SystemEnvironment) -> any BlockDeviceFacts
    /// The passwd entry of `name`. Throws the reason qemu-ga gives: with
    /// glibc, `Success` for a user that does not exist.
    func userAccount(named name: String, on system: SystemEnvironment) throws(KeyFileError) -> UserAccount
}

/// The facts of the machine this process runs on: getifaddrs and
/// SIOCGIFHWADDR, libudev and the NVMe device, getpwnam_r.
package struct HostFacts: MachineFacts {
    package init() {}

    package func interfaceSource(on system: SystemEnvironment) -> any InterfaceSource { HostInterfaces() }
    package func blockDeviceFacts(on system: SystemEnvironment) -> any BlockDeviceFacts { LibudevFacts() }

    package func userAccount(named name: String, on system: SystemEnvironment) throws(KeyFileError) -> UserAccount {
        try lookUpUser(named: name)
    }
}

extension SystemEnvironment {
    func interfaceSource() -> any InterfaceSource { facts.interfaceSource(on: self) }
    func blockDeviceFacts() -> any BlockDeviceFacts { facts.blockDeviceFacts(on: self) }

    func userAccount(named name: String) throws(KeyFileError) -> UserAccount {
        try facts.userAccount(named: name, on: self)
    }
}

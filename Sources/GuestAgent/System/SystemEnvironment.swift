import Glibc

/// Where the agent finds the machine it manages: `/proc`, `/sys`, `/etc`,
/// the mount table, home directories and the programs it runs (shutdown,
/// hwclock, chpasswd, ...).
///
/// In production the root is `/`. Tests point it at a fixture tree (with the
/// environment variable `QGA_SYSTEM_ROOT`) so that commands which read or
/// change the machine run against trees and fake programs instead.
public struct SystemEnvironment: Equatable, Sendable {
    /// The directory that stands for `/`.
    public var root: String

    public init(root: String = "/") {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    /// The environment of this process: `/`, unless `QGA_SYSTEM_ROOT` names
    /// a fixture tree.
    public static func current() -> SystemEnvironment {
        SystemEnvironment(root: getenv("QGA_SYSTEM_ROOT").map { String(cString: $0) } ?? "/")
    }

    public var isRealRoot: Bool { root == "/" }

    /// The real location of an absolute path of the managed machine, e.g.
    /// `/proc/self/mountinfo`, a mount point read from it, or `/sbin/poweroff`.
    public func path(_ absolutePath: String) -> String {
        isRealRoot ? absolutePath : root + absolutePath
    }
}

/// The agent's configuration: qemu-ga.conf's `[general]` group, then the
/// command line on top of it.
public struct GAConfig: Equatable, Sendable {
    public var daemonize = false
    /// As given: like qemu-ga, an unknown method is only refused when the
    /// channel is opened (so `-D` prints anything).
    public var method: String?
    public var path: String?
    public var logFile: String?
    public var pidFile = "/var/run/qemu-ga.pid"
    public var fsfreezeHook: String?
    /// Better than qemu-ga (`thaw-after`, seconds; nil or 0: never):
    /// filesystems still frozen this long after a freeze are thawed.
    public var thawAfter: Int?
    /// Better than qemu-ga (`kill-hook-after`, seconds; nil or 0: wait
    /// forever): a hook running longer is killed and the freeze fails.
    public var killHookAfter: Int?
    /// Better than qemu-ga (`exec-output-budget`, MiB; nil: the default,
    /// 0: none): guest-exec output not yet handed to the host, all children
    /// together; what does not fit is discarded and marked truncated.
    public var execOutputBudget: Int?
    public var stateDirectory = "/var/run"
    public var verbose = false
    public var retryPath = false
    /// Command names in the order given, file first, then each `-b`/`-a`.
    /// (qemu-ga 7.2 reverses each list, so its `-D` output does not read back
    /// as the same configuration; the order has no other effect.)
    public var blockedRPCs: [String] = []
    public var allowedRPCs: [String] = []
    public var dumpConfig = false

    public init() {}

    static let defaultConfigPath = "/etc/qemu/qemu-ga.conf"
    static let defaultFsfreezeHook = "/etc/qemu/fsfreeze-hook"
    static let group = "general"
    // Our own keys and long options: their first letters begin no
    // qemu-ga option, so every abbreviation qemu-ga accepts stays unambiguous.
    static let thawAfterKey = "thaw-after"
    static let killHookAfterKey = "kill-hook-after"
    static let execOutputBudgetKey = "exec-output-budget"
    static let defaultExecOutputBudget = 256

    /// The exec output budget in bytes; nil: unbounded.
    var execOutputBudgetBytes: Int? {
        let mebibytes = execOutputBudget ?? GAConfig.defaultExecOutputBudget
        return mebibytes > 0 ? mebibytes << 20 : nil
    }

    /// A number (seconds, MiB) given with an option: 0 or more.
    static func number(_ text: String) -> Int? {
        guard let value = Int32(text), value >= 0 else { return nil }
        return Int(value)
    }

    /// Adds a list given in the config file or with `-b`/`-a`. qemu-ga splits
    /// on commas; we also split on semicolons, as the manual calls these
    /// string lists and GLib separates those with `;`.
    static func appendList(_ text: String, to list: inout [String]) {
        let names = text.isEmpty ? [] : text.split(omittingEmptySubsequences: false) { $0 == "," || $0 == ";" }.map(String.init)
        list += names
    }

    /// Reads the keys of the `[general]` group that are present; booleans can
    /// only switch things on, as in qemu-ga.
    mutating func apply(_ file: KeyFile) throws(KeyFileError) {
        let group = GAConfig.group
        // The manual's own sample says `daemonize`; qemu-ga only reads `daemon`.
        if let daemonize = try file.boolean(group, "daemonize") { self.daemonize = daemonize }
        if let daemonize = try file.boolean(group, "daemon") { self.daemonize = daemonize }
        if let method = try file.string(group, "method") { self.method = method }
        if let path = try file.string(group, "path") { self.path = path }
        if let logFile = try file.string(group, "logfile") { self.logFile = logFile }
        if let pidFile = try file.string(group, "pidfile") { self.pidFile = pidFile }
        if let hook = try file.string(group, "fsfreeze-hook") { fsfreezeHook = hook }
        if let seconds = try file.number(group, GAConfig.thawAfterKey) { thawAfter = seconds }
        if let seconds = try file.number(group, GAConfig.killHookAfterKey) { killHookAfter = seconds }
        if let mebibytes = try file.number(group, GAConfig.execOutputBudgetKey) { execOutputBudget = mebibytes }
        if let stateDirectory = try file.string(group, "statedir") { self.stateDirectory = stateDirectory }
        if try file.boolean(group, "verbose") == true { verbose = true }
        if let retryPath = try file.boolean(group, "retry-path") { self.retryPath = retryPath }
        if let blocked = try file.string(group, "block-rpcs") { GAConfig.appendList(blocked, to: &blockedRPCs) }
        if let allowed = try file.string(group, "allow-rpcs") { GAConfig.appendList(allowed, to: &allowedRPCs) }
    }

    /// The effective configuration as qemu-ga's `-D` prints it: GKeyFile
    /// text that, used as a config file, gives the same configuration.
    public func dump() -> String {
        let file = KeyFile()
        let group = GAConfig.group
        file.set(group, "daemon", boolean: daemonize)
        file.set(group, "method", string: method ?? ChannelMethod.virtioSerial.rawValue)
        if let path { file.set(group, "path", string: path) }
        if let logFile { file.set(group, "logfile", string: logFile) }
        file.set(group, "pidfile", string: pidFile)
        if let fsfreezeHook { file.set(group, "fsfreeze-hook", string: fsfreezeHook) }
        // Our own keys only when set, so that the dump of a plain
        // configuration is qemu-ga's.
        if let thawAfter { file.set(group, GAConfig.thawAfterKey, integer: Int32(thawAfter)) }
        if let killHookAfter { file.set(group, GAConfig.killHookAfterKey, integer: Int32(killHookAfter)) }
        if let execOutputBudget { file.set(group, GAConfig.execOutputBudgetKey, integer: Int32(execOutputBudget)) }
        file.set(group, "statedir", string: stateDirectory)
        file.set(group, "verbose", boolean: verbose)
        file.set(group, "retry-path", boolean: retryPath)
        file.set(group, "block-rpcs", string: blockedRPCs.joined(separator: ","))
        file.set(group, "allow-rpcs", string: allowedRPCs.joined(separator: ","))
        return file.data()
    }
}

extension KeyFile {
    /// A number (seconds, MiB): a non-negative integer, else GLib's error
    /// text for a value that is not one.
    fileprivate func number(_ group: String, _ key: String) throws(KeyFileError) -> Int? {
        guard let value = try integer(group, key) else { return nil }
        guard value >= 0 else {
            throw KeyFileError(message: "Key file contains key “\(key)” in group “\(group)” which has a value that cannot be interpreted.")
        }
        return Int(value)
    }
}

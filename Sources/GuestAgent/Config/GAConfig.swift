/// The agent's configuration: qemu-ga.conf's `[general]` group, then the
/// command line on top of it.
package struct GAConfig: Equatable, Sendable {
    package var daemonize = false
    /// As given: like qemu-ga, an unknown method is only refused when the
    /// channel is opened (so `-D` prints anything).
    package var method: String?
    package var path: String?
    package var logFile: String?
    package var pidFile = "/var/run/qemu-ga.pid"
    package var fsfreezeHook: String?
    /// Better than qemu-ga (`thaw-after`, seconds; nil or 0: never):
    /// filesystems still frozen this long after a freeze are thawed.
    package var thawAfter: Int?
    /// Better than qemu-ga (`kill-hook-after`, seconds; nil or 0: wait
    /// forever): a hook running longer is killed and the freeze fails.
    package var killHookAfter: Int?
    /// Better than qemu-ga (`exec-output-budget`, MiB; nil: the default,
    /// 0: none): guest-exec output not yet handed to the host, all children
    /// together; what does not fit is discarded and marked truncated.
    package var execOutputBudget: Int?
    /// Beyond qemu-ga (`exec-timeout`, seconds; nil or 0: no limit): a
    /// guest-exec child still running this long is killed with SIGKILL.
    package var execTimeout: Int?
    /// Beyond qemu-ga (`exclude-interfaces`, fnmatch patterns):
    /// guest-network-get-interfaces leaves out the interfaces they match.
    package var excludedInterfaces: [String]?
    /// Beyond qemu-ga (`exec-allow`, fnmatch patterns; nil: everything):
    /// the canonical paths of the programs guest-exec may run.
    package var execAllow: [String]?
    /// Beyond qemu-ga (`open-allow`, fnmatch patterns; nil: everything):
    /// the canonical paths of the files guest-file-open may open or create.
    package var openAllow: [String]?
    package var stateDirectory = "/var/run"
    package var verbose = false
    package var retryPath = false
    /// Command names in the order given, file first, then each `-b`/`-a`.
    /// (qemu-ga 7.2 reverses each list, so its `-D` output does not read back
    /// as the same configuration; the order has no other effect.)
    package var blockedRPCs: [String] = []
    package var allowedRPCs: [String] = []
    package var dumpConfig = false

    package init() {}

    static let defaultConfigPath = "/etc/qemu/qemu-ga.conf"
    static let defaultFsfreezeHook = "/etc/qemu/fsfreeze-hook"
    static let group = "general"

    /// One of our own settings: a key of `[general]` and a long option of
    /// the same name (no letter), printed by `-D` only when set, so that a
    /// plain configuration dumps as qemu-ga's. Their first letters begin no
    /// qemu-ga option, so every abbreviation qemu-ga accepts stays
    /// unambiguous. (qemu-ga ignores the keys.)
    struct OwnSetting {
        enum Value {
            /// A number of `unit`s (seconds, MiB), 0 or more; the last one
            /// given counts.
            case number(Field<Int?>, unit: String)
            /// Items separated by `,` or `;`; each one given adds to the list.
            case list(Field<[String]?>)
        }

        let key: String
        let value: Value
    }

    /// One field of a configuration, read and written through closures
    /// rather than a key path: the runtime builds each key path from mangled
    /// type names the first time, a quarter of a million instructions at
    /// every start for these seven.
    struct Field<Value> {
        let get: (GAConfig) -> Value
        let set: (inout GAConfig, Value) -> Void
    }

    static let ownSettings = [
        OwnSetting(key: "thaw-after", value: .number(Field(get: { $0.thawAfter }, set: { $0.thawAfter = $1 }), unit: "seconds")),
        OwnSetting(key: "kill-hook-after", value: .number(Field(get: { $0.killHookAfter }, set: { $0.killHookAfter = $1 }), unit: "seconds")),
        OwnSetting(key: "exec-timeout", value: .number(Field(get: { $0.execTimeout }, set: { $0.execTimeout = $1 }), unit: "seconds")),
        OwnSetting(key: "exclude-interfaces", value: .list(Field(get: { $0.excludedInterfaces }, set: { $0.excludedInterfaces = $1 }))),
        OwnSetting(key: "exec-allow", value: .list(Field(get: { $0.execAllow }, set: { $0.execAllow = $1 }))),
        OwnSetting(key: "open-allow", value: .list(Field(get: { $0.openAllow }, set: { $0.openAllow = $1 }))),
        OwnSetting(key: "exec-output-budget", value: .number(Field(get: { $0.execOutputBudget }, set: { $0.execOutputBudget = $1 }), unit: "MiB")),
    ]
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
        for setting in GAConfig.ownSettings {
            switch setting.value {
            case .number(let field, _):
                if let number = try file.number(group, setting.key) { field.set(&self, number) }
            case .list(let field):
                if let text = try file.string(group, setting.key) { field.append(text, to: &self) }
            }
        }
        if let stateDirectory = try file.string(group, "statedir") { self.stateDirectory = stateDirectory }
        if try file.boolean(group, "verbose") == true { verbose = true }
        if let retryPath = try file.boolean(group, "retry-path") { self.retryPath = retryPath }
        if let blocked = try file.string(group, "block-rpcs") { GAConfig.appendList(blocked, to: &blockedRPCs) }
        if let allowed = try file.string(group, "allow-rpcs") { GAConfig.appendList(allowed, to: &allowedRPCs) }
    }

    /// The effective configuration as qemu-ga's `-D` prints it: GKeyFile
    /// text that, used as a config file, gives the same configuration.
    package func dump() -> String {
        let file = KeyFile()
        let group = GAConfig.group
        file.set(group, "daemon", boolean: daemonize)
        file.set(group, "method", string: method ?? ChannelMethod.virtioSerial.rawValue)
        if let path { file.set(group, "path", string: path) }
        if let logFile { file.set(group, "logfile", string: logFile) }
        file.set(group, "pidfile", string: pidFile)
        if let fsfreezeHook { file.set(group, "fsfreeze-hook", string: fsfreezeHook) }
        for setting in GAConfig.ownSettings {
            switch setting.value {
            case .number(let field, _):
                if let number = field.get(self) { file.set(group, setting.key, integer: Int32(number)) }
            case .list(let field):
                if let items = field.get(self) { file.set(group, setting.key, string: items.joined(separator: ",")) }
            }
        }
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

extension GAConfig.Field where Value == [String]? {
    /// Adds a list to one of our lists, which is set from then on, even when
    /// `text` is empty (an empty allow list allows nothing).
    func append(_ text: String, to config: inout GAConfig) {
        var items = get(config) ?? []
        GAConfig.appendList(text, to: &items)
        set(&config, items)
    }
}

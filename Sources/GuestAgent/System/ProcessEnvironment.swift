import Glibc

/// This process's environment variables.
enum ProcessEnvironment {
    /// The value of `name`, nil when it is unset.
    static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

import Glibc

/// The kernel's `uname` fields qemu-ga reports.
struct KernelIdentity: Equatable {
    let release: String
    let version: String
    let machine: String

    static func current() throws(SystemError) -> KernelIdentity {
        var names = utsname()
        guard uname(&names) == 0 else { throw SystemError.current }
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return KernelIdentity(release: text(names.release), version: text(names.version), machine: text(names.machine))
    }
}

/// `gethostname` into a buffer of the system's maximum host name length,
/// read anew on every call.
func currentHostName() throws(SystemError) -> String {
    var length = sysconf(Int32(_SC_HOST_NAME_MAX))
    if length < 0 { length = 255 }
    var buffer = [CChar](repeating: 0, count: length + 1)
    guard gethostname(&buffer, length) == 0 else { throw SystemError.current }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// One login of utmp: a `USER_PROCESS` record.
struct UtmpLogin: Equatable {
    let user: String
    let seconds: Int64
    let microseconds: Int64
}

extension SystemEnvironment {
    /// The `USER_PROCESS` records of the machine's utmp (`/var/run/utmp`),
    /// in file order, read with glibc's utmpx functions.
    func userLogins() -> [UtmpLogin] {
        _ = utmpname(path("/var/run/utmp"))
        setutxent()
        defer { endutxent() }
        var logins: [UtmpLogin] = []
        while let record = getutxent() {
            guard record.pointee.ut_type == USER_PROCESS else { continue }
            // The name as a C string from ut_user, as qemu-ga copies it (a
            // name that fills the field runs on into ut_host).
            let user = UnsafeRawPointer(record).advanced(by: MemoryLayout<utmpx>.offset(of: \utmpx.ut_user)!)
                .withMemoryRebound(to: CChar.self, capacity: 1) { String(cString: $0) }
            logins.append(UtmpLogin(user: user, seconds: Int64(record.pointee.ut_tv.tv_sec),
                                    microseconds: Int64(record.pointee.ut_tv.tv_usec)))
        }
        return logins
    }
}

/// The kernel's clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit
/// of /proc/stat's counters.
func clockTicksPerSecond() -> UInt64 {
    UInt64(sysconf(Int32(_SC_CLK_TCK)))
}

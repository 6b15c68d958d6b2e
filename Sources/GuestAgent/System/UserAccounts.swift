import CGLib
import Glibc

/// What the agent needs of a user's passwd entry.
struct UserAccount: Equatable {
    let uid: uid_t
    let gid: gid_t
    /// The home directory as the machine names it.
    let home: String
}

extension SystemEnvironment {
    /// The passwd entry of `name`: the real machine's database through
    /// getpwnam_r, as qemu-ga looks it up, or a fixture's `<root>/etc/passwd`.
    /// Throws the reason qemu-ga gives: with glibc, `Success` for a user that
    /// does not exist.
    func userAccount(named name: String) throws(KeyFileError) -> UserAccount {
        guard isRealRoot else {
            // name:password:uid:gid:gecos:home:shell, first match wins.
            for line in (readTextFile(path("/etc/passwd")) ?? "").split(separator: "\n") {
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                if fields.count >= 7, fields[0] == name, let uid = uid_t(fields[2]), let gid = gid_t(fields[3]) {
                    return UserAccount(uid: uid, gid: gid, home: String(fields[5]))
                }
            }
            throw KeyFileError(message: String(cString: strerror(0)))
        }
        return try lookUpUser(named: name)
    }
}

/// getpwnam_r with a buffer that grows while glibc asks for more, as GLib's
/// `g_unix_get_passwd_entry` (2.64) does it; the error text is its
/// `strerror` of getpwnam_r's result, so `Success` for a user that does not
/// exist.
private func lookUpUser(named name: String) throws(KeyFileError) -> UserAccount {
    var size = max(Int(sysconf(Int32(_SC_GETPW_R_SIZE_MAX))), 1024)
    while true {
        var buffer = [CChar](repeating: 0, count: size)
        let outcome: Result<UserAccount, KeyFileError>? = buffer.withUnsafeMutableBufferPointer { buffer in
            var entry = passwd()
            var found: UnsafeMutablePointer<passwd>?
            let result = getpwnam_r(name, &entry, buffer.baseAddress!, buffer.count, &found)
            if result == ERANGE && buffer.count < 1 << 20 { return nil }
            guard result == 0, found != nil else { return .failure(KeyFileError(message: String(cString: strerror(result)))) }
            return .success(UserAccount(uid: entry.pw_uid, gid: entry.pw_gid, home: String(cString: entry.pw_dir)))
        }
        guard let outcome else {
            size *= 2
            continue
        }
        return try outcome.get()
    }
}

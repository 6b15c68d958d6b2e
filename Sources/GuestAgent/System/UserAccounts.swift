import CGLib
import Glibc

/// What the agent needs of a user's passwd entry.
package struct UserAccount: Equatable {
    package let uid: uid_t
    package let gid: gid_t
    /// The home directory as the machine names it.
    package let home: String

    package init(uid: uid_t, gid: gid_t, home: String) {
        self.uid = uid
        self.gid = gid
        self.home = home
    }
}

/// getpwnam_r with a buffer that grows while glibc asks for more, as GLib's
/// `g_unix_get_passwd_entry` (2.64) does it; the error text is its
/// `strerror` of getpwnam_r's result, so `Success` for a user that does not
/// exist.
func lookUpUser(named name: String) throws(KeyFileError) -> UserAccount {
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

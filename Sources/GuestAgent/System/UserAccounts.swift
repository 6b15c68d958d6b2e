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
    /// GLib's `g_unix_get_passwd_entry` (getpwnam), as qemu-ga looks it up,
    /// or a fixture's `<root>/etc/passwd`. Throws the reason qemu-ga gives:
    /// with glibc, `Success` for a user that does not exist.
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
        var error: UnsafeMutablePointer<GError>?
        guard let entry = g_unix_get_passwd_entry(name, &error) else { throw KeyFileError(error: &error) }
        defer { g_free(entry) }
        return UserAccount(uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid, home: String(cString: entry.pointee.pw_dir))
    }
}

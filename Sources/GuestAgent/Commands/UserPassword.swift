import QMPJSON

/// `guest-set-user-password`: `chpasswd` (with `-e` for an already crypted
/// password) fed `<username>:<password>\n`. Whether the user exists is
/// chpasswd's business; its complaint ends up in the error.
struct GuestSetUserPassword: @MainActor GuestAgentCommand {
    static let name = "guest-set-user-password"

    struct Arguments: Decodable {
        let username: String
        /// Base64.
        let password: String
        let crypted: Bool
    }

    static func run(_ arguments: Arguments, agent: GAState) throws(QMPError) -> EmptyResult {
        let decoded: [UInt8]
        do {
            decoded = try Base64.decode(arguments.password)
        } catch {
            throw QMPError(error.description)
        }
        // qemu-ga treats the password as a C string.
        let password = decoded.prefix { $0 != 0 }
        guard !password.contains(0x0A) else { throw QMPError("forbidden characters in raw password") }
        // Bytes, not characters: "\r\n" is one Character.
        guard !arguments.username.utf8.contains(where: { $0 == 0x0A || $0 == UInt8(ascii: ":") }) else {
            throw QMPError("forbidden characters in username")
        }
        try ChildProcess.run(["chpasswd"] + (arguments.crypted ? ["-e"] : []),
                             input: Array("\(arguments.username):".utf8) + password + [0x0A],
                             action: "set user password", system: agent.system)
        return EmptyResult()
    }
}

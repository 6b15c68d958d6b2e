import Glibc

/// `<statedir>/qga.state`: what must survive a restart, today only the next
/// guest-file handle (`[global]` `fd_counter`, first 1000), so that handles
/// are never reused across restarts.
package final class PersistentState {
    let path: String
    private(set) var fdCounter: Int64

    static let defaultFdCounter: Int64 = 1000
    private static let group = "global"
    private static let counterKey = "fd_counter"

    private init(path: String, fdCounter: Int64) {
        self.path = path
        self.fdCounter = fdCounter
    }

    /// Reads the file, or starts from the defaults when there is none (and
    /// writes it at once unless `create` is false, as while frozen). A value
    /// that is not a 32-bit integer reads as 0, as in qemu-ga.
    package static func load(directory: String, create: Bool) throws(PersistentStateError) -> PersistentState {
        let path = directory + "/qga.state"
        var info = stat()
        if stat(path, &info) != 0 {
            guard errno == ENOENT else {
                throw PersistentStateError(["unable to access state file at path \(path): \(SystemError.current)"])
            }
            let state = PersistentState(path: path, fdCounter: defaultFdCounter)
            if create {
                do throws(PersistentStateError) {
                    try state.save()
                } catch {
                    throw PersistentStateError(error.messages + ["unable to create state file at path \(path)"])
                }
            }
            return state
        }
        let file = KeyFile()
        do {
            try file.load(path: path)
        } catch {
            throw PersistentStateError(["error loading persistent state from path: \(path), \(error)"])
        }
        let counter: Int64
        if !file.hasKey(group, counterKey) {
            counter = defaultFdCounter
        } else {
            counter = Int64((try? file.integer(group, counterKey)) ?? 0)
        }
        return PersistentState(path: path, fdCounter: counter)
    }

    /// Hands out the next handle, committing the counter to disk first. As
    /// in qemu-ga, a number whose commit failed is not handed out again.
    func takeFileHandle() throws(PersistentStateError) -> Int64 {
        let handle = fdCounter
        fdCounter += 1
        try save()
        return handle
    }

    /// Replaces the file atomically (temporary file, then rename).
    func save() throws(PersistentStateError) {
        let file = KeyFile()
        // qemu-ga stores the counter as a 32-bit key-file integer.
        file.set(PersistentState.group, PersistentState.counterKey, integer: Int32(truncatingIfNeeded: fdCounter))
        do {
            try file.save(path: path)
        } catch {
            throw PersistentStateError(["failed to write persistent state to \(path): \(error)"])
        }
    }
}

/// The critical lines qemu-ga logs when its state file fails, in order.
package struct PersistentStateError: Error {
    let messages: [String]
    init(_ messages: [String]) { self.messages = messages }
}

/// The files hosts have open, by handle (qemu-ga's GuestFileHandle list).
final class GuestFiles {
    /// What was done last with a handle: stdio needs a flush between a
    /// write and a read, and a seek between a read and a write.
    enum LastOperation {
        case none, reading, writing
    }

    final class OpenFile {
        let stream: StdioStream
        var lastOperation = LastOperation.none
        init(stream: StdioStream) { self.stream = stream }
    }

    private var files: [Int64: OpenFile] = [:]
    /// guest-file-write decodes into this on the way to the file, so that a
    /// request never holds its decoded data whole.
    /// Made at the first write, so that an idle agent does not hold it.
    lazy var decodeBuffer = [UInt8](repeating: 0, count: 1 << 18)

    func add(_ file: OpenFile, handle: Int64) { files[handle] = file }
    func remove(_ handle: Int64) { files[handle] = nil }

    func find(_ handle: Int64) throws(QMPError) -> OpenFile {
        guard let file = files[handle] else { throw QMPError("handle '\(handle)' has not been found") }
        return file
    }
}

import CGLib

/// GLib's whole-file functions, whose error messages qemu-ga passes on.
enum GLibFile {
    /// `g_file_get_contents`.
    static func contents(of path: String) throws(KeyFileError) -> [UInt8] {
        var contents: UnsafeMutablePointer<gchar>?
        var length: gsize = 0
        var error: UnsafeMutablePointer<GError>?
        guard g_file_get_contents(path, &contents, &length, &error) != 0, let contents else {
            throw KeyFileError(error: &error)
        }
        defer { g_free(contents) }
        return contents.withMemoryRebound(to: UInt8.self, capacity: Int(length)) { Array(UnsafeBufferPointer(start: $0, count: Int(length))) }
    }

    /// `g_file_set_contents`: a temporary file in the same directory, then a
    /// rename over `path`.
    static func setContents(of path: String, to bytes: [UInt8]) throws(KeyFileError) {
        var error: UnsafeMutablePointer<GError>?
        // Terminated, so that even no bytes have an address.
        let written = (bytes + [0]).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: gchar.self) { g_file_set_contents(path, $0.baseAddress!, gssize(bytes.count), &error) }
        }
        if written == 0 { throw KeyFileError(error: &error) }
    }
}

import CGLib

/// A GLib key file (`GKeyFile`), the format of qemu-ga.conf and qga.state.
final class KeyFile {
    private let keyFile: OpaquePointer

    init() {
        keyFile = g_key_file_new()
    }

    isolated deinit {
        g_key_file_free(keyFile)
    }

    /// Loads `path`; the error is GLib's message, which qemu-ga prints as is.
    func load(path: String) throws(KeyFileError) {
        var error: UnsafeMutablePointer<GError>?
        if g_key_file_load_from_file(keyFile, path, G_KEY_FILE_NONE, &error) == 0 {
            throw KeyFileError(error: &error)
        }
    }

    func load(data: String) throws(KeyFileError) {
        var error: UnsafeMutablePointer<GError>?
        if g_key_file_load_from_data(keyFile, data, gsize(data.utf8.count), G_KEY_FILE_NONE, &error) == 0 {
            throw KeyFileError(error: &error)
        }
    }

    func hasKey(_ group: String, _ key: String) -> Bool {
        g_key_file_has_key(keyFile, group, key, nil) != 0
    }

    /// The value with GKeyFile's unescaping, or nil when the key is absent.
    func string(_ group: String, _ key: String) throws(KeyFileError) -> String? {
        guard hasKey(group, key) else { return nil }
        var error: UnsafeMutablePointer<GError>?
        let value = g_key_file_get_string(keyFile, group, key, &error)
        defer { g_free(value) }
        // A bad escape sets the error but still returns a string.
        guard error == nil, let value else { throw KeyFileError(error: &error) }
        return String(cString: value)
    }

    /// The value as written in the file (no unescaping), or nil when the
    /// key is absent.
    func rawValue(_ group: String, _ key: String) -> String? {
        guard let value = g_key_file_get_value(keyFile, group, key, nil) else { return nil }
        defer { g_free(value) }
        return String(cString: value)
    }

    /// `true`/`false`/`1`/`0`; anything else is GLib's "cannot be interpreted" error.
    func boolean(_ group: String, _ key: String) throws(KeyFileError) -> Bool? {
        guard hasKey(group, key) else { return nil }
        var error: UnsafeMutablePointer<GError>?
        let value = g_key_file_get_boolean(keyFile, group, key, &error)
        if error != nil { throw KeyFileError(error: &error) }
        return value != 0
    }

    func integer(_ group: String, _ key: String) throws(KeyFileError) -> Int32? {
        guard hasKey(group, key) else { return nil }
        var error: UnsafeMutablePointer<GError>?
        let value = g_key_file_get_integer(keyFile, group, key, &error)
        if error != nil { throw KeyFileError(error: &error) }
        return value
    }

    func set(_ group: String, _ key: String, string value: String) {
        g_key_file_set_string(keyFile, group, key, value)
    }

    func set(_ group: String, _ key: String, boolean value: Bool) {
        g_key_file_set_boolean(keyFile, group, key, value ? 1 : 0)
    }

    func set(_ group: String, _ key: String, integer value: Int32) {
        g_key_file_set_integer(keyFile, group, key, value)
    }

    /// The file's text, as `g_key_file_to_data` writes it.
    func data() -> String {
        var length: gsize = 0
        guard let text = g_key_file_to_data(keyFile, &length, nil) else { return "" }
        defer { g_free(text) }
        return String(cString: text)
    }

    /// Writes the file's text to `path` atomically (a temporary file, then a
    /// rename), as `g_file_set_contents` does.
    func save(path: String) throws(KeyFileError) {
        var error: UnsafeMutablePointer<GError>?
        if g_key_file_save_to_file(keyFile, path, &error) == 0 {
            throw KeyFileError(error: &error)
        }
    }
}

/// A GError from GKeyFile or GLib's file functions, with its message.
package struct KeyFileError: Error, CustomStringConvertible {
    package let description: String
    /// True when the file does not exist (`G_FILE_ERROR_NOENT`).
    let isMissingFile: Bool

    init(error: inout UnsafeMutablePointer<GError>?) {
        isMissingFile = error.map {
            $0.pointee.domain == g_file_error_quark() && $0.pointee.code == Int32(G_FILE_ERROR_NOENT.rawValue)
        } ?? false
        description = takeErrorMessage(&error)
    }

    /// An error in GLib's words that GLib did not raise itself.
    package init(message: String) {
        isMissingFile = false
        description = message
    }
}

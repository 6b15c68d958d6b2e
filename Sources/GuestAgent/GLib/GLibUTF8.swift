import CGLib

/// GLib's UTF-8 rules, where qemu-ga applies them.
enum GLibUTF8 {
    /// `g_utf8_validate` of all of `bytes`.
    static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { g_utf8_validate($0.baseAddress, buffer.count, nil) != 0 }
        }
    }
}

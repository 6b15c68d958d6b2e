import CGLib

/// Messages through GLib's logging, as qemu-ga reports what happens before
/// its own log handler is installed (`** (process:PID): CRITICAL **: ...`
/// on stderr) and as the handler receives once it is.
enum GLibLog {
    static func critical(_ message: String) { log(G_LOG_LEVEL_CRITICAL, message) }
    static func warning(_ message: String) { log(G_LOG_LEVEL_WARNING, message) }

    private static func log(_ level: GLogLevelFlags, _ message: String) {
        message.withCString { text in
            withVaList([text]) { g_logv(nil, level, "%s", $0) }
        }
    }
}

import CGLib

// Thin wrappers over GLib's event sources. Each source holds a +1 on a box
// with the Swift handler and releases it in its destroy notify, so a handler
// stays alive exactly as long as GLib may call it.

let sourceContinue: gboolean = 1
let sourceRemove: gboolean = 0

private final class Handler<Argument> {
    let call: (Argument) -> Bool
    init(_ call: @escaping (Argument) -> Bool) { self.call = call }
    // Not the isolated deinit of a MainActor module's class, which asks the
    // concurrency runtime for the current executor: GLib releases the box
    // on the main thread, and it holds nothing but the closure.
    nonisolated deinit {}
}

private let releaseHandler: GDestroyNotify = { box in
    Unmanaged<AnyObject>.fromOpaque(box!).release()
}

/// A GLib source we added; cancelling it twice, or after it ended by
/// returning false, is harmless.
final class GLibSource {
    fileprivate(set) var id: guint = 0

    var isActive: Bool { id != 0 }

    func cancel() {
        if id != 0 { g_source_remove(id) }
        id = 0
    }

    isolated deinit { cancel() }

    /// Adds a source through `add`, which gets the retained handler box to
    /// pass as user data (with `releaseHandler` as its destroy notify). The
    /// source forgets its id once the handler returns false.
    private static func add<Argument>(
        _ handler: @escaping (Argument) -> Bool, _ add: (UnsafeMutableRawPointer) -> guint
    ) -> GLibSource {
        let source = GLibSource()
        let box = Handler<Argument> { [weak source] argument in
            let keep = handler(argument)
            if !keep { source?.id = 0 }
            return keep
        }
        source.id = add(Unmanaged.passRetained(box).toOpaque())
        return source
    }

    /// Calls `handler` whenever `condition` holds on `channel`, until the
    /// handler returns false or the source is cancelled.
    static func watch(
        _ channel: UnsafeMutablePointer<GIOChannel>, _ condition: GIOCondition,
        _ handler: @escaping (GIOCondition) -> Bool
    ) -> GLibSource {
        add(handler) { box in
            g_io_add_watch_full(
                channel, G_PRIORITY_DEFAULT, condition,
                { _, condition, box in
                    Unmanaged<Handler<GIOCondition>>.fromOpaque(box!).takeUnretainedValue().call(condition)
                        ? sourceContinue : sourceRemove
                },
                box, releaseHandler)
        }
    }

    /// Calls `handler` whenever `condition` holds on `descriptor` (which the
    /// caller keeps open while the source lives), until the handler returns
    /// false or the source is cancelled.
    static func watch(
        descriptor: Int32, _ condition: GIOCondition, _ handler: @escaping (GIOCondition) -> Bool
    ) -> GLibSource {
        add(handler) { box in
            g_unix_fd_add_full(
                G_PRIORITY_DEFAULT, descriptor, condition,
                { _, condition, box in
                    Unmanaged<Handler<GIOCondition>>.fromOpaque(box!).takeUnretainedValue().call(condition)
                        ? sourceContinue : sourceRemove
                },
                box, releaseHandler)
        }
    }

    /// Calls `handler` once with the wait status of child `pid` (spawned
    /// with G_SPAWN_DO_NOT_REAP_CHILD) after GLib has reaped it.
    static func childWatch(_ pid: pid_t, _ handler: @escaping (Int32) -> Void) -> GLibSource {
        add({ (status: Int32) in
            handler(status)
            return false
        }) { box in
            g_child_watch_add_full(
                G_PRIORITY_DEFAULT, pid,
                { _, status, box in
                    _ = Unmanaged<Handler<Int32>>.fromOpaque(box!).takeUnretainedValue().call(status)
                },
                box, releaseHandler)
        }
    }

    /// Calls `handler` every `milliseconds` until it returns false.
    static func timeout(milliseconds: UInt32, _ handler: @escaping () -> Bool) -> GLibSource {
        add(handler) { box in
            g_timeout_add_full(
                G_PRIORITY_DEFAULT, milliseconds,
                { box in
                    Unmanaged<Handler<Void>>.fromOpaque(box!).takeUnretainedValue().call(()) ? sourceContinue : sourceRemove
                },
                box, releaseHandler)
        }
    }

    /// Calls `handler` on each delivery of `signal` (one of those
    /// `g_unix_signal_add` supports). The source stays: returning false from
    /// a signal source would restore the default disposition.
    static func unixSignal(_ signal: Int32, _ handler: @escaping () -> Void) -> GLibSource {
        add({ () -> Bool in
            handler()
            return true
        }) { box in
            g_unix_signal_add_full(
                G_PRIORITY_DEFAULT, signal,
                { box in
                    _ = Unmanaged<Handler<Void>>.fromOpaque(box!).takeUnretainedValue().call(())
                    return sourceContinue
                },
                box, releaseHandler)
        }
    }
}

/// Combines GLib condition flags, which Swift imports as plain structs.
func ioCondition(_ flags: GIOCondition...) -> GIOCondition {
    GIOCondition(rawValue: flags.reduce(0) { $0 | $1.rawValue })
}

extension GIOCondition {
    func contains(_ flag: GIOCondition) -> Bool { rawValue & flag.rawValue != 0 }
}

/// Takes the message out of a GError and frees it.
nonisolated func takeErrorMessage(_ error: inout UnsafeMutablePointer<GError>?) -> String {
    defer { g_clear_error(&error) }
    guard let error, let message = error.pointee.message else { return "unknown error" }
    return String(cString: message)
}

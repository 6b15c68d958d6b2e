import CGLib

/// Gives the program's clean pages back (`cglib_release_clean_pages`: code
/// and constant data, never written) when start-up is over, and again each
/// time the host has been quiet for a second after speaking. A host polls
/// now and then and the agent is idle in between; without this, whatever
/// answering once touched (with the kernel's fault-around, 64 KiB of the
/// binary around each page used) stays counted as the agent's resident
/// memory until it exits, although only the page cache needs to hold it.
/// The next request maps what it runs again, with minor faults.
///
/// The timer runs only while the host speaks: one wake-up per second of
/// traffic, none while idle. Nothing is released while the guest is frozen,
/// when the agent does nothing but wait for the thaw.
final class CleanPageRelease {
    private let quietMilliseconds: UInt32
    private let isFrozen: () -> Bool
    private let release: () -> Void
    private var timer: GLibSource?
    private var heardSinceTick = false

    init(quietMilliseconds: UInt32 = 1000, isFrozen: @escaping () -> Bool,
         release: @escaping () -> Void = { cglib_release_clean_pages_when_idle() }) {
        self.quietMilliseconds = quietMilliseconds
        self.isFrozen = isFrozen
        self.release = release
    }

    /// Start-up is over: what it alone touched need not stay resident.
    func startUpDone() {
        release()
    }

    /// The host sent something (called after each chunk of input).
    func hostSpoke() {
        guard timer?.isActive != true else {
            heardSinceTick = true
            return
        }
        timer = GLibSource.timeout(milliseconds: quietMilliseconds) { [unowned self] in tick() }
    }

    /// The timer's handler: true to wait another period.
    func tick() -> Bool {
        if heardSinceTick {
            heardSinceTick = false
            return true
        }
        if !isFrozen() { release() }
        return false
    }
}

import CGLib
import Glibc

/// One open byte stream to the host (an accepted socket client, or a serial
/// port): a non-blocking descriptor behind a GIOChannel that is used only for
/// its watches, with a read watch and an output queue.
///
/// Replies that cannot be written at once wait in the queue behind a
/// `G_IO_OUT` watch; while they wait, input is not read, so a host that stops
/// reading slows the agent down instead of growing its memory.
///
/// The connection never decides on its own what the end of input means: it
/// stops watching and tells its owner through `onStop`, and the owner closes
/// it (a socket client), rests and reads again (virtio-serial) or re-opens the
/// device (isa-serial).
final class ChannelConnection {
    /// Why the connection stopped reading or writing.
    enum Stop: Equatable {
        /// End of input: `read` returned 0, or the peer hung up (`G_IO_HUP`)
        /// while nothing could be read or written.
        case hangUp
        /// `read` failed with this errno.
        case readFailed(Int32)
        /// `write` failed with this errno; the output queue has been dropped.
        case writeFailed(Int32)
    }

    private let channel: UnsafeMutablePointer<GIOChannel>
    let descriptor: Int32
    private var inputWatch: GLibSource?
    private var outputWatch: GLibSource?
    /// Replies not yet written: `queue[queueHead...]`, the first of them
    /// written up to `queueOffset`.
    private var queue: [[UInt8]] = []
    private var queueHead = 0
    private var queueOffset = 0
    private var readBuffer = [UInt8](repeating: 0, count: ChannelConnection.readSize)
    private let log: GALog

    /// Called with each chunk read from the host.
    var onInput: (UnsafeRawBufferPointer) -> Void = { _ in }
    /// Called when reading or writing stopped; see `Stop`. Nothing is watched
    /// afterwards until the owner calls `startReading` again.
    var onStop: (Stop) -> Void = { _ in }

    private(set) var isOpen = true
    /// How often the input watch woke the agent: what the tests count
    /// instead of timing (a busy loop shows as many wake-ups per rest).
    private(set) var inputWakeUps = 0

    /// qemu-ga's read size.
    static let readSize = 4096
    static let readsPerWakeUp = 16

    /// Takes ownership of `descriptor` and makes it non-blocking.
    init(descriptor: Int32, log: GALog) {
        self.descriptor = descriptor
        self.log = log
        let flags = fcntl(descriptor, F_GETFL)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) }
        channel = g_io_channel_unix_new(descriptor)
        // Raw bytes, no GLib buffer: reads and writes go straight to the fd.
        g_io_channel_set_encoding(channel, nil, nil)
        g_io_channel_set_buffered(channel, 0)
        g_io_channel_set_close_on_unref(channel, 1)
    }

    isolated deinit {
        inputWatch?.cancel()
        outputWatch?.cancel()
        g_io_channel_unref(channel)
    }

    /// True while output waits for the host to take it.
    var hasPendingOutput: Bool { queueHead < queue.count }

    var isReading: Bool { inputWatch?.isActive == true }

    /// Watches for input, unless replies are waiting to be written (input
    /// resumes once they are).
    func startReading() {
        guard isOpen, !isReading, outputWatch?.isActive != true else { return }
        inputWatch = GLibSource.watch(channel, ioCondition(G_IO_IN, G_IO_HUP, G_IO_ERR, G_IO_NVAL)) {
            [weak self] condition in
            self?.readAvailable(condition) ?? false
        }
    }

    /// Queues `bytes` after everything sent before and writes as much as the
    /// host takes now.
    func send(_ bytes: [UInt8]) {
        guard isOpen, !bytes.isEmpty else { return }
        queue.append(bytes)
        // A longer queue already has a writability watch waiting.
        if queue.count - queueHead == 1 {
            switch writeQueued() {
            case .done: break
            case .blocked: pauseInputUntilWritable()
            case .failed(let error): failWrite(error)
            }
        }
    }

    /// Forgets every reply not yet written and stops waiting to write them.
    /// Input stays stopped if it was paused for them.
    func discardOutput() {
        outputWatch?.cancel()
        queue = []
        queueHead = 0
        queueOffset = 0
    }

    /// Closes the descriptor and drops anything still queued; `onStop` is not
    /// called.
    func close() {
        guard isOpen else { return }
        isOpen = false
        inputWatch?.cancel()
        discardOutput()
        g_io_channel_shutdown(channel, 0, nil)
    }

    private func readAvailable(_ condition: GIOCondition) -> Bool {
        inputWakeUps += 1
        // qemu-ga reads 4 KiB at a time; taking several such reads per
        // wake-up keeps its log lines while sparing wake-ups in bulk transfers.
        for attempt in 0..<ChannelConnection.readsPerWakeUp {
            guard isOpen else { return false }
            var count: Int
            repeat {
                count = readBuffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            } while count < 0 && errno == EINTR
            if count > 0 {
                readBuffer.withUnsafeBytes { buffer in
                    let data = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                    // qemu-ga prints the chunk as a C string: up to the first NUL.
                    log.debug("read data, count: \(count), data: \(String(decoding: data.prefix { $0 != 0 }, as: UTF8.self))")
                    onInput(data)
                }
                // onInput may have paused input (a reply must wait) or closed us.
                guard isOpen && isReading else { return false }
                if count < readBuffer.count { return true }
                continue
            }
            if count < 0 {
                let error = errno
                if error == EAGAIN || error == EWOULDBLOCK {
                    // A spurious wake-up; but a hang-up that reads nothing would
                    // wake us again at once, forever.
                    if attempt > 0 || !condition.contains(ioCondition(G_IO_HUP, G_IO_ERR)) { return true }
                    return stop(.hangUp)
                }
                return stop(.readFailed(error))
            }
            return stop(.hangUp)
        }
        return true
    }

    /// Ends the input watch from inside its callback and tells the owner.
    private func stop(_ reason: Stop) -> Bool {
        inputWatch?.cancel()
        onStop(reason)
        return false
    }

    private enum WriteResult {
        case done, blocked, failed(Int32)
    }

    /// Writes queued bytes until the queue is empty or the host would block.
    private func writeQueued() -> WriteResult {
        while isOpen, queueHead < queue.count {
            let first = queue[queueHead]
            let written = first.withUnsafeBytes { buffer in
                write(descriptor, buffer.baseAddress! + queueOffset, buffer.count - queueOffset)
            }
            if written < 0 {
                let error = errno
                if error == EINTR { continue }
                if error == EAGAIN || error == EWOULDBLOCK { return .blocked }
                return .failed(error)
            }
            queueOffset += written
            if queueOffset == first.count {
                queue[queueHead] = []
                queueHead += 1
                queueOffset = 0
            }
        }
        queue = []
        queueHead = 0
        return .done
    }

    private func failWrite(_ error: Int32) {
        log.warning("error writing to channel: \(SystemError(errno: error))")
        discardOutput()
        onStop(.writeFailed(error))
    }

    private func pauseInputUntilWritable() {
        inputWatch?.cancel()
        outputWatch = GLibSource.watch(channel, ioCondition(G_IO_OUT, G_IO_HUP, G_IO_ERR, G_IO_NVAL)) {
            [weak self] condition in
            self?.writable(condition) ?? false
        }
    }

    private func writable(_ condition: GIOCondition) -> Bool {
        guard isOpen else { return false }
        let before = (queueHead, queueOffset)
        switch writeQueued() {
        case .done:
            outputWatch?.cancel()
            startReading()
            return false
        case .blocked:
            // Woken by a hang-up, not by room to write: a virtio-serial port
            // whose host went away reports HUP and refuses writes until a
            // host is back. Waiting here would spin.
            if condition.contains(ioCondition(G_IO_HUP, G_IO_ERR, G_IO_NVAL)), before == (queueHead, queueOffset) {
                discardOutput()
                onStop(.hangUp)
                return false
            }
            return true
        case .failed(let error):
            failWrite(error)
            return false
        }
    }
}

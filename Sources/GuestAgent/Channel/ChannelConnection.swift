import CGLib
import Glibc

/// One open byte stream to the host (an accepted socket client, or a serial
/// port): a raw, unbuffered, non-blocking GIOChannel with a read watch and an
/// output queue.
///
/// Replies that cannot be written at once wait in the queue behind a
/// `G_IO_OUT` watch; while they wait, input is not read, so a host that stops
/// reading slows the agent down instead of growing its memory.
final class ChannelConnection {
    private let channel: UnsafeMutablePointer<GIOChannel>
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
    /// Called once when the host side is gone (EOF, error, failed write).
    var onClose: () -> Void = {}

    private(set) var isOpen = true

    /// Big enough that bulk file transfers need few wake-ups.
    static let readSize = 64 * 1024

    init(descriptor: Int32, log: GALog) {
        self.log = log
        channel = g_io_channel_unix_new(descriptor)
        // Raw bytes both ways: 0xFF and invalid UTF-8 are legal traffic.
        g_io_channel_set_encoding(channel, nil, nil)
        g_io_channel_set_buffered(channel, 0)
        let flags = g_io_channel_get_flags(channel)
        g_io_channel_set_flags(channel, GIOFlags(rawValue: flags.rawValue | G_IO_FLAG_NONBLOCK.rawValue), nil)
        g_io_channel_set_close_on_unref(channel, 1)
    }

    isolated deinit {
        inputWatch?.cancel()
        outputWatch?.cancel()
        g_io_channel_unref(channel)
    }

    func startReading() {
        guard isOpen, inputWatch?.isActive != true else { return }
        inputWatch = GLibSource.watch(channel, ioCondition(G_IO_IN, G_IO_HUP, G_IO_ERR)) { [weak self] condition in
            self?.readAvailable(condition) ?? false
        }
    }

    /// Queues `bytes` after everything sent before and writes as much as the
    /// host takes now.
    func send(_ bytes: [UInt8]) {
        guard isOpen, !bytes.isEmpty else { return }
        queue.append(bytes)
        // A longer queue already has a writability watch waiting.
        if queue.count - queueHead == 1, writeQueued() { pauseInputUntilWritable() }
    }

    /// Drops the connection and anything still queued for it.
    func close() {
        guard isOpen else { return }
        isOpen = false
        inputWatch?.cancel()
        outputWatch?.cancel()
        queue = []
        queueHead = 0
        queueOffset = 0
        g_io_channel_shutdown(channel, 0, nil)
        onClose()
    }

    private func readAvailable(_ condition: GIOCondition) -> Bool {
        var count: gsize = 0
        var error: UnsafeMutablePointer<GError>?
        let status = readBuffer.withUnsafeMutableBytes { buffer in
            g_io_channel_read_chars(channel, buffer.baseAddress!.assumingMemoryBound(to: gchar.self), gsize(buffer.count), &count, &error)
        }
        switch status {
        case G_IO_STATUS_NORMAL:
            readBuffer.withUnsafeBytes { buffer in
                let data = UnsafeRawBufferPointer(rebasing: buffer[0..<Int(count)])
                // qemu-ga prints the chunk as a C string: up to the first NUL.
                log.debug("read data, count: \(count), data: \(String(decoding: data.prefix { $0 != 0 }, as: UTF8.self))")
                onInput(data)
            }
            return isOpen && inputWatch?.isActive == true
        case G_IO_STATUS_AGAIN:
            return true
        case G_IO_STATUS_EOF:
            log.debug("received EOF")
            close()
            return false
        default:
            log.warning("error reading channel: \(takeErrorMessage(&error))")
            close()
            return false
        }
    }

    /// Writes queued bytes until the queue is empty or the host would block;
    /// true when some are left.
    private func writeQueued() -> Bool {
        while isOpen, queueHead < queue.count {
            let first = queue[queueHead]
            var written: gsize = 0
            var error: UnsafeMutablePointer<GError>?
            let status = first.withUnsafeBytes { buffer in
                g_io_channel_write_chars(
                    channel, buffer.baseAddress!.advanced(by: queueOffset).assumingMemoryBound(to: gchar.self),
                    gssize(buffer.count - queueOffset), &written, &error)
            }
            queueOffset += Int(written)
            if queueOffset == first.count {
                queue[queueHead] = []
                queueHead += 1
                queueOffset = 0
            }
            switch status {
            case G_IO_STATUS_NORMAL:
                continue
            case G_IO_STATUS_AGAIN:
                if queueHead < queue.count { return true }
            default:
                log.warning("error writing to channel: \(takeErrorMessage(&error))")
                close()
            }
        }
        queue = []
        queueHead = 0
        return false
    }

    private func pauseInputUntilWritable() {
        inputWatch?.cancel()
        outputWatch = GLibSource.watch(channel, ioCondition(G_IO_OUT, G_IO_HUP, G_IO_ERR)) { [weak self] _ in
            guard let self else { return false }
            if self.writeQueued() { return true }
            self.startReading()
            return false
        }
    }
}

import Glibc

/// How the agent reaches the host (`-m`).
package enum ChannelMethod: String, CaseIterable, Sendable {
    case virtioSerial = "virtio-serial"
    case isaSerial = "isa-serial"
    case unixListen = "unix-listen"
    case vsockListen = "vsock-listen"
}

/// The agent's channel to the host: the transport of `-m`, turned into a
/// stream of input chunks and a way to send replies. At most one host client
/// is connected at a time.
///
/// What ends a host's session, per method:
/// - unix-listen / vsock-listen: the client's EOF, a read error (a reset) or
///   a failed write closes that client, and the next one is accepted.
/// - virtio-serial: EOF or HUP means no host is attached to the port. The
///   read watch is dropped and re-armed `reconnectDelay` later (no busy loop,
///   no sleeping in a callback), queued replies for the departed host are
///   dropped, and the device stays open: the next host is answered on the
///   same descriptor.
/// - isa-serial: EOF means the tty was hung up, and a hung-up descriptor
///   never reads anything again; it is closed and the port re-opened
///   `reconnectDelay` later.
///
/// `onDisconnect` is called once per departed host. A failure of the channel
/// itself (virtio/isa read error such as ENODEV or EIO, an isa port that
/// cannot be re-opened, a listening socket that can no longer accept) is
/// retried every `retryInterval` with `-r`, and otherwise reported through
/// `onFatalError`.
final class GAChannel {
    let method: ChannelMethod
    /// The `-p` path; nil for a socket-activated listener.
    let path: String?
    /// `-r`: re-open the channel every `retryInterval` after it fails.
    let retryPath: Bool
    /// Milliseconds between re-open attempts: qemu-ga's `QGA_RETRY_INTERVAL`,
    /// 5 s, unless a test asks for less.
    let retryInterval: UInt32
    /// How long a serial port rests after its host went away before it is
    /// read again. qemu-ga sleeps 100 ms per EOF inside its read callback (10
    /// wake-ups a second, with signals and child watches blocked meanwhile);
    /// a 250 ms timer gives 4 cheap wake-ups a second and answers a returning
    /// host within a quarter of a second, far inside any host-side guest-sync
    /// timeout.
    var reconnectDelay: UInt32 = 250

    private let log: GALog
    private var listener: ListeningSocket?
    private var connection: ChannelConnection?
    private var restTimer: GLibSource?
    private var retryTimer: GLibSource?
    /// A serial port's host has gone and not sent anything since.
    private var hostAway = false

    /// Called with each chunk of bytes the host sends.
    var onInput: (UnsafeRawBufferPointer) -> Void = { _ in }
    /// Called when the host (client) is gone, before another is served.
    var onDisconnect: () -> Void = {}
    /// Called when the channel failed and will not come back (no `-r`, or a
    /// socket-activated listener that cannot be re-created): the main loop
    /// should stop. qemu-ga exits 0 then.
    var onFatalError: () -> Void = {}
    /// Called when a re-open of `-r` succeeded: the channel accepts
    /// requests again.
    var onReopen: () -> Void = {}

    /// Opens the channel of `method` at `path` (the path is required: the
    /// startup fills in the defaults).
    ///
    /// Throws the open error (qemu-ga's text) when it fails without `-r`, or
    /// when it can never succeed (`isPermanent`: a malformed vsock address, a
    /// socket path that is too long). With `retryPath`, any other failure is
    /// logged as qemu-ga logs a failed round (the error and
    /// `failed to create guest agent channel`,
    /// `failed to initialize guest agent channel`,
    /// `agent stopped unexpectedly, restarting...`,
    /// `waiting for channel path...`) and the channel retries from a GLib
    /// timeout every `retryInterval` until it opens.
    init(
        method: ChannelMethod, path: String, log: GALog, retryPath: Bool = false, retryInterval: UInt32 = 5000
    ) throws(ChannelError) {
        self.method = method
        self.path = path
        self.log = log
        self.retryPath = retryPath
        self.retryInterval = retryInterval
        do {
            try open()
        } catch {
            guard retryPath, !error.isPermanent else { throw error }
            logFailedRound(error)
            scheduleRetry()
        }
    }

    /// Serves clients of a listening socket inherited through socket
    /// activation (see `SocketActivation.inheritedListener`); takes ownership
    /// of `listeningDescriptor`. `method` must be unix-listen or vsock-listen.
    /// Such a listener cannot be re-created, so `-r` does not apply to it.
    init(method: ChannelMethod, listeningDescriptor: Int32, log: GALog) throws(ChannelError) {
        guard method == .unixListen || method == .vsockListen else {
            throw ChannelError("unsupported channel method/type: \(method.rawValue)", permanent: true)
        }
        self.method = method
        path = nil
        self.log = log
        retryPath = false
        retryInterval = 5000
        attachListener(ListeningSocket(descriptor: listeningDescriptor, log: log))
    }

    /// A host client is connected (listeners), or the serial port is open.
    var isConnected: Bool { connection?.isOpen == true }
    /// The channel accepts requests: it listens, or its port is open.
    var isOpen: Bool { isListening || isConnected }
    /// The listening socket is open (whether or not a client is connected).
    var isListening: Bool { listener != nil }
    /// The channel failed and a re-open is scheduled.
    var isWaitingToRetry: Bool { retryTimer?.isActive == true }
    /// Replies wait for the host to take them (input is paused meanwhile).
    var hasPendingOutput: Bool { connection?.hasPendingOutput == true }
    /// The listening socket, or the open serial port.
    var descriptor: Int32? { listener?.descriptor ?? connection?.descriptor }
    /// Wake-ups of the current connection's input watch, and rests taken
    /// after a serial port's EOF: counted for the tests.
    var inputWakeUps: Int { connection?.inputWakeUps ?? 0 }
    private(set) var rests = 0

    func send(_ bytes: [UInt8]) {
        connection?.send(bytes)
    }

    // MARK: Opening and failing

    private func open() throws(ChannelError) {
        guard let path else { return }
        switch method {
        case .unixListen:
            attachListener(try ListeningSocket.unix(path: path, log: log))
        case .vsockListen:
            attachListener(try ListeningSocket.vsock(VsockAddress(parsing: path), log: log))
        case .virtioSerial:
            attachDevice(try SerialPort.openVirtio(path: path))
        case .isaSerial:
            attachDevice(try SerialPort.openISA(path: path))
        }
    }

    /// The channel is unusable: close everything, then retry or give up.
    private func channelFailed() {
        restTimer?.cancel()
        connection?.close()
        connection = nil
        listener?.stopAccepting()
        listener = nil
        hostAway = false
        onDisconnect()
        if retryPath, path != nil {
            log.warning("agent stopped unexpectedly, restarting...")
            scheduleRetry()
        } else {
            onFatalError()
        }
    }

    private func logFailedRound(_ error: ChannelError) {
        log.critical(error.description)
        log.critical("failed to create guest agent channel")
        log.critical("failed to initialize guest agent channel")
        log.warning("agent stopped unexpectedly, restarting...")
    }

    private func scheduleRetry() {
        log.warning("waiting for channel path...")
        retryTimer = GLibSource.timeout(milliseconds: retryInterval) { [weak self] in
            self?.retryOpen()
            return false
        }
    }

    private func retryOpen() {
        do {
            try open()
            onReopen()
        } catch {
            logFailedRound(error)
            scheduleRetry()
        }
    }

    // MARK: Listening sockets

    private func attachListener(_ listener: ListeningSocket) {
        listener.onAccept = { [weak self] descriptor in self?.attachClient(descriptor) }
        listener.onFailure = { [weak self] _ in self?.channelFailed() }
        self.listener = listener
        listener.startAccepting()
    }

    private func attachClient(_ descriptor: Int32) {
        let connection = ChannelConnection(descriptor: descriptor, log: log)
        connection.onInput = { [weak self] bytes in self?.onInput(bytes) }
        connection.onStop = { [weak self] stop in self?.clientStopped(stop) }
        self.connection = connection
        connection.startReading()
    }

    /// Any end of a client closes it and lets the next one in. qemu-ga 7.2
    /// stops the whole agent on a read error (a client that closed with
    /// replies unread gets ECONNRESET); here only that client goes.
    private func clientStopped(_ stop: ChannelConnection.Stop) {
        switch stop {
        case .hangUp:
            log.debug("received EOF")
        case .readFailed(let error):
            log.warning("error reading channel")
            log.debug("closing the client after a read error: \(SystemError(errno: error))")
        case .writeFailed:
            break  // logged by the connection
        }
        connection?.close()
        connection = nil
        onDisconnect()
        listener?.startAccepting()
    }

    // MARK: Serial ports

    private func attachDevice(_ descriptor: Int32) {
        let connection = ChannelConnection(descriptor: descriptor, log: log)
        connection.onInput = { [weak self] bytes in self?.deviceInput(bytes) }
        connection.onStop = { [weak self] stop in self?.deviceStopped(stop) }
        self.connection = connection
        connection.startReading()
    }

    private func deviceInput(_ bytes: UnsafeRawBufferPointer) {
        hostAway = false
        onInput(bytes)
    }

    private func deviceStopped(_ stop: ChannelConnection.Stop) {
        switch stop {
        case .hangUp:
            if !hostAway {
                hostAway = true
                log.debug("received EOF")
                connection?.discardOutput()
                onDisconnect()
            }
            if method == .isaSerial {
                connection?.close()
                connection = nil
            }
            rests += 1
            restTimer = GLibSource.timeout(milliseconds: reconnectDelay) { [weak self] in
                self?.resumeDevice()
                return false
            }
        case .readFailed(let error):
            log.warning("error reading channel")
            log.debug("the channel failed: \(SystemError(errno: error))")
            channelFailed()
        case .writeFailed:
            // Reading tells whether the host left or the device is gone.
            connection?.startReading()
        }
    }

    private func resumeDevice() {
        if let connection {
            connection.startReading()
            return
        }
        guard let path else { return }
        do {
            attachDevice(try SerialPort.openISA(path: path, discardingInput: false))
        } catch {
            log.critical(error.description)
            channelFailed()
        }
    }
}

import Glibc

/// How the agent reaches the host (`-m`).
public enum ChannelMethod: String, CaseIterable, Sendable {
    case virtioSerial = "virtio-serial"
    case isaSerial = "isa-serial"
    case unixListen = "unix-listen"
    case vsockListen = "vsock-listen"
}

/// The agent's channel to the host: the transport of `-m`, turned into a
/// stream of input chunks and a way to send replies. At most one host client
/// is connected at a time.
final class GAChannel {
    let method: ChannelMethod
    private let log: GALog
    private var listener: ListeningSocket?
    private var connection: ChannelConnection?

    /// Called with each chunk of bytes the host sends.
    var onInput: (UnsafeRawBufferPointer) -> Void = { _ in }
    /// Called when the connected client is gone, before another is accepted.
    var onDisconnect: () -> Void = {}

    init(method: ChannelMethod, path: String, log: GALog) throws(ChannelError) {
        self.method = method
        self.log = log
        switch method {
        case .unixListen:
            listener = try ListeningSocket.unix(path: path)
        case .virtioSerial, .isaSerial, .vsockListen:
            throw ChannelError("unsupported channel method/type: \(method.rawValue)")
        }
        listener?.onAccept = { [weak self] descriptor in self?.attach(descriptor) }
        listener?.startAccepting()
    }

    var isConnected: Bool { connection?.isOpen == true }

    func send(_ bytes: [UInt8]) {
        connection?.send(bytes)
    }

    private func attach(_ descriptor: Int32) {
        let connection = ChannelConnection(descriptor: descriptor, log: log)
        connection.onInput = { [weak self] bytes in self?.onInput(bytes) }
        connection.onClose = { [weak self] in self?.clientClosed() }
        self.connection = connection
        connection.startReading()
    }

    private func clientClosed() {
        connection = nil
        onDisconnect()
        listener?.startAccepting()
    }
}

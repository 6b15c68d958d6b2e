/// What the agent's state talks to: the byte stream of the host, input in
/// and replies out. The daemon's is a `GAChannel`; a test may attach any
/// other (an in-memory one drives `GAState.handleInput` without descriptors
/// or a main loop).
protocol HostChannel: AnyObject {
    /// Called with each chunk of bytes the host sends.
    var onInput: (UnsafeRawBufferPointer) -> Void { get set }
    /// Called when the host is gone, before another is served.
    var onDisconnect: () -> Void { get set }
    /// Queues `bytes` for the host after everything sent before.
    func send(_ bytes: [UInt8])
}

extension GAChannel: HostChannel {}

import CGLib
import Glibc

/// Opening the character devices of the serial methods, as qemu-ga 7.2's
/// `ga_channel_open` does.
enum SerialPort {
    /// The virtio-serial port: `O_RDWR|O_NONBLOCK|O_CLOEXEC`, no terminal
    /// settings (qemu-ga also passes `O_ASYNC`, which `open` ignores on Linux).
    static func openVirtio(path: String) throws(ChannelError) -> Int32 {
        try open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
    }

    /// The isa-serial port: `O_RDWR|O_NOCTTY|O_NONBLOCK|O_CLOEXEC`, then raw
    /// 8-bit input at 38400 baud with pending input discarded, exactly as
    /// qemu-ga sets it (every return code ignored). A re-open after a hang-up
    /// (`discardingInput: false`) keeps what the host sent meanwhile.
    static func openISA(path: String, discardingInput: Bool = true) throws(ChannelError) -> Int32 {
        let fd = try open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        var settings = termios()
        _ = tcgetattr(fd, &settings)
        settings.c_iflag &= ~isaClearedInputFlags
        settings.c_oflag = 0
        settings.c_lflag = 0
        // OR-ed into the baud bits, not set with cfsetspeed: qemu-ga's way.
        settings.c_cflag |= tcflag_t(B38400)
        withUnsafeMutableBytes(of: &settings.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        if discardingInput { _ = tcflush(fd, TCIFLUSH) }
        _ = tcsetattr(fd, TCSANOW, &settings)
        return fd
    }

    /// The input flags qemu-ga clears on the isa-serial port.
    static let isaClearedInputFlags = tcflag_t(
        IGNBRK | BRKINT | IGNPAR | PARMRK | INPCK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF | IXANY | IMAXBEL)

    private static func open(_ path: String, _ flags: Int32) throws(ChannelError) -> Int32 {
        var fd: Int32
        repeat { fd = Glibc.open(path, flags) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw ChannelError("error opening channel '\(path)'", errno: errno) }
        return fd
    }
}

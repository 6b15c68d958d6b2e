import CGLib
import Glibc
import Testing
@testable import GuestAgent

/// ChannelConnection on its own.
@Suite struct ChannelConnectionTests {
    /// A virtio-serial port whose host went away reports HUP while refusing
    /// writes with EAGAIN. A pty master whose slave was opened and closed
    /// does the same (HUP, writes accepted until its buffer is full, then
    /// EAGAIN): replies waiting for the departed host must be dropped and
    /// reported as a hang-up, not retried in a busy loop.
    @Test func queuedRepliesAreDroppedWhenTheHostHangsUp() throws {
        let pty = PseudoTerminal()
        let host = pty.openSlave()
        var raw = termios()
        tcgetattr(host, &raw)
        cfmakeraw(&raw)
        tcsetattr(host, TCSANOW, &raw)

        let connection = ChannelConnection(descriptor: pty.master, log: GALog())
        var stops: [ChannelConnection.Stop] = []
        connection.onStop = { stops.append($0) }
        connection.startReading()
        // Far more than the pty holds while the host does not read.
        connection.send([UInt8](repeating: 0x41, count: 512 * 1024))
        #expect(connection.hasPendingOutput)
        #expect(!connection.isReading, "input is paused while replies wait")
        drive(for: 0.1) { false }
        #expect(stops.isEmpty)

        close(host)
        #expect(drive { !stops.isEmpty })
        #expect(stops == [.hangUp])
        #expect(!connection.hasPendingOutput)
        #expect(connection.isOpen)
        // Nothing is watched any more: the loop is quiet.
        #expect(driveIdle(for: 0.3) <= 2)
        connection.close()
    }

    @Test func endOfInputIsReportedOnce() throws {
        var ends: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        let connection = ChannelConnection(descriptor: ends[0], log: GALog())
        var input: [UInt8] = []
        var stops: [ChannelConnection.Stop] = []
        connection.onInput = { input += $0 }
        connection.onStop = { stops.append($0) }
        connection.startReading()
        writeString(ends[1], "hello")
        close(ends[1])
        #expect(drive { !stops.isEmpty })
        #expect(input == Array("hello".utf8))
        #expect(stops == [.hangUp])
        #expect(driveIdle(for: 0.2) <= 2)
        #expect(stops.count == 1)
    }
}

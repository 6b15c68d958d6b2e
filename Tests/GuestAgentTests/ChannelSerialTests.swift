import CGLib
import Glibc
import Testing
@testable import GuestAgent

/// The serial methods over pseudo-terminals: the agent opens the slave as
/// its port, the test is the host on the master.
@Suite struct ChannelSerialTests {
    /// Every settings bit on, an odd speed and VMIN/VTIME: what is left
    /// afterwards shows exactly what was cleared, set or OR-ed.
    static func scramble(_ settings: inout termios) {
        settings.c_iflag = 0o177777
        settings.c_oflag = 0o177777
        settings.c_lflag = 0o177777
        settings.c_cflag = tcflag_t(B115200 | CS7 | PARENB | CREAD | CLOCAL)
        setControlCharacter(&settings, VMIN, 5)
        setControlCharacter(&settings, VTIME, 3)
    }

    struct Observed: Equatable {
        let iflag, oflag, cflag, lflag: tcflag_t
        let vmin, vtime: UInt8
        init(_ settings: termios) {
            iflag = settings.c_iflag
            oflag = settings.c_oflag
            cflag = settings.c_cflag
            lflag = settings.c_lflag
            vmin = controlCharacter(settings, VMIN)
            vtime = controlCharacter(settings, VTIME)
        }
        init(iflag: tcflag_t, oflag: tcflag_t, cflag: tcflag_t, lflag: tcflag_t, vmin: UInt8, vtime: UInt8) {
            (self.iflag, self.oflag, self.cflag, self.lflag, self.vmin, self.vtime) = (iflag, oflag, cflag, lflag, vmin, vtime)
        }
    }

    /// What qemu-ga 7.2 leaves on a pty that `scramble` set up, observed
    /// (`NeedsSystem.ChannelReferenceTests` checks the binary): the 13 input
    /// flags cleared (IUCLC, IUTF8 and 0o100000 stay), oflag and lflag 0,
    /// B38400 OR-ed into B115200 (giving 0o10017), VMIN 1, VTIME 0.
    static func referenceSettings(from before: termios) -> Observed {
        Observed(iflag: 0o141000, oflag: 0, cflag: before.c_cflag | tcflag_t(B38400), lflag: 0, vmin: 1, vtime: 0)
    }

    @Test func isaSerialSetsTheReferenceTerminalSettings() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let pty = PseudoTerminal()
        defer { pty.closeMaster() }
        pty.configureSlave(Self.scramble)
        let before = pty.slaveSettings()

        let channel = try GAChannel(method: .isaSerial, path: pty.slavePath, log: GALog())
        #expect(channel.isConnected)
        let ours = Observed(pty.slaveSettings())
        #expect(ours == Self.referenceSettings(from: before))
        #expect(ours.cflag == 0o14277)
    }

    @Test func isaSerialDiscardsStaleInputAndAnswers() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let pty = PseudoTerminal()
        defer { pty.closeMaster() }
        pty.configureSlave { cfmakeraw(&$0) }
        // Typed before the agent opened the port: tcflush(TCIFLUSH) drops it,
        // so it must not produce an error reply.
        writeString(pty.master, "garbage{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1}}")
        let agent = TestAgent(scratch: scratch)
        let channel = try GAChannel(method: .isaSerial, path: pty.slavePath, log: agent.log)
        agent.attach(channel)

        writeString(pty.master, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":42}}\n")
        let lines = readLines(from: pty.master, until: "42")
        #expect(lines == ["{\"return\": 42}"])
        #expect(agent.fatalErrors == 0)
    }

    @Test func isaSerialOpenErrorText() {
        #expect(throws: ChannelError.self) {
            try GAChannel(method: .isaSerial, path: "/nonexistent/ttyS9", log: GALog())
        }
        do {
            _ = try GAChannel(method: .virtioSerial, path: "/nonexistent/port", log: GALog())
            Issue.record("opened a missing port")
        } catch {
            #expect(error.description == "error opening channel '/nonexistent/port': No such file or directory")
            #expect(!error.isPermanent)
        }
        do {
            _ = try GAChannel(method: .isaSerial, path: "/tmp", log: GALog())
            Issue.record("opened a directory")
        } catch {
            #expect(error.description == "error opening channel '/tmp': Is a directory")
        }
    }

    /// virtio-serial's host-away state (EOF) ends without re-opening: the
    /// device descriptor stays and the next host is answered on it. A pty in
    /// canonical mode delivers such an EOF (VEOF) without hanging up.
    @Test func virtioSerialAnswersTheNextHostOnTheSameDescriptor() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let pty = PseudoTerminal()
        defer { pty.closeMaster() }
        pty.configureSlave { settings in
            cfmakeraw(&settings)
            settings.c_lflag |= tcflag_t(ICANON)
            setControlCharacter(&settings, VEOF, 4)
        }
        let agent = TestAgent(scratch: scratch)
        let channel = try GAChannel(method: .virtioSerial, path: pty.slavePath, log: agent.log)
        channel.reconnectDelay = 100
        agent.attach(channel)
        let device = channel.descriptor

        writeString(pty.master, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1}}\n")
        #expect(readLines(from: pty.master, until: "return") == ["{\"return\": 1}"])

        // The host leaves in the middle of a request.
        writeString(pty.master, "{\"execute\":\"guest-sync\",\n\u{4}")
        #expect(drive { agent.disconnects == 1 })
        #expect(agent.logMessages.filter { $0 == "debug: received EOF" }.count == 1)

        // The next host: answered after the rest, on the same descriptor,
        // with a fresh parser.
        writeString(pty.master, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":2}}\n")
        #expect(readLines(from: pty.master, until: "return") == ["{\"return\": 2}"])
        #expect(channel.descriptor == device)
        #expect(agent.disconnects == 1)
        #expect(agent.fatalErrors == 0)
    }

    /// With no host attached, a virtio port reports EOF and HUP on every poll.
    /// qemu-ga 7.2 sleeps 100 ms inside its read callback each time; the
    /// agent must stay idle without sleeping: a pty whose master is closed
    /// behaves the same way (EOF, HUP, writes failing).
    @Test func virtioSerialIdlesWhileNoHostIsAttached() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let pty = PseudoTerminal()
        pty.configureSlave { cfmakeraw(&$0) }
        let agent = TestAgent(scratch: scratch)
        let channel = try GAChannel(method: .virtioSerial, path: pty.slavePath, log: agent.log)
        agent.attach(channel)
        #expect(channel.reconnectDelay == 250)

        // Fill the port with replies nobody reads until the agent has to
        // queue them, then the host goes away with replies still queued.
        let request = Array("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1}}".utf8)
        let deadline = monotonicSeconds() + 30  // only against a hang
        while !channel.hasPendingOutput, monotonicSeconds() < deadline {
            _ = request.withUnsafeBytes { write(pty.master, $0.baseAddress, $0.count) }
            g_main_context_iteration(nil, 0)
        }
        #expect(channel.hasPendingOutput, "the agent should be holding replies the host did not read")
        pty.closeMaster()
        #expect(drive { agent.disconnects >= 1 })

        // Each 250 ms rest ends with one read of the port, which finds the
        // EOF again and rests again: one wake-up per rest (a busy loop would
        // be thousands). Counted, not timed, so that load cannot break it.
        let (rests, wakeUps) = (channel.rests, channel.inputWakeUps)
        #expect(drive(for: 30) { channel.rests >= rests + 4 }, "the port is no longer polled")
        let (rested, woken) = (channel.rests - rests, channel.inputWakeUps - wakeUps)
        #expect(abs(woken - rested) <= 1, "\(woken) wake-ups of the port in \(rested) rests")
        #expect(channel.isConnected)
        #expect(agent.fatalErrors == 0)
        #expect(agent.disconnects == 1)
    }
}

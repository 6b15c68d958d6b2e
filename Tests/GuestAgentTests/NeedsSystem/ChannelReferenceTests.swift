import CGLib
import Glibc
import Testing
import TestRequirements
@testable import GuestAgent

extension NeedsSystem {
    /// The channel tests' expectations checked on qemu-ga 7.2 itself, and a
    /// hang-up that needs root.
    @Suite struct ChannelReferenceTests {
        /// On a pty set up the same way, qemu-ga 7.2 leaves the settings our
        /// agent's test expects.
        @Test func isaSerialTerminalSettingsOfTheReference() throws {
            let pty = PseudoTerminal()
            defer { pty.closeMaster() }
            pty.configureSlave(ChannelSerialTests.scramble)
            let before = pty.slaveSettings()
            let reference = ChildProcess([SystemRequirements.referenceAgent, "-m", "isa-serial", "-p", pty.slavePath])
            defer {
                _ = reference.kill()
                close(reference.stderr)
            }
            // Until the reference has set the port up (a deadline only for a hang).
            let deadline = monotonicSeconds() + 30
            while pty.slaveSettings().c_lflag != 0, monotonicSeconds() < deadline { usleep(5000) }
            #expect(ChannelSerialTests.Observed(pty.slaveSettings()) == ChannelSerialTests.referenceSettings(from: before))
        }

        @Test func isaSerialOpenErrorTextOfTheReference() {
            #expect(referenceCritical(["-m", "isa-serial", "-p", "/tmp"]) == "error opening channel '/tmp': Is a directory")
        }

        @Test func unixListenErrorTextsOfTheReference() {
            let scratch = ScratchDirectory()
            defer { scratch.remove() }
            for (path, text) in ChannelSocketTests.unixListenErrors(in: scratch) {
                #expect(referenceCritical(["-m", "unix-listen", "-p", path]) == text)
            }
        }

        @Test func vsockParseErrorsMatchTheReference() {
            for (input, text) in ChannelSocketTests.vsockParseCases {
                #expect(referenceCritical(["-m", "vsock-listen", "-p", input]) == text, "input '\(input)'")
            }
        }

        /// qemu-ga 7.2 goes deaf after an EOF on isa-serial. A hung-up tty
        /// descriptor reads EOF forever, so the agent re-opens the port.
        /// (TIOCVHANGUP needs CAP_SYS_ADMIN.)
        @Test func isaSerialRecoversFromAHangUp() throws {
            let scratch = ScratchDirectory()
            defer { scratch.remove() }
            let pty = PseudoTerminal()
            defer { pty.closeMaster() }
            let agent = TestAgent(scratch: scratch)
            let channel = try GAChannel(method: .isaSerial, path: pty.slavePath, log: agent.log)
            channel.reconnectDelay = 50
            agent.attach(channel)

            writeString(pty.master, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1}}\n")
            #expect(readLines(from: pty.master, until: "return") == ["{\"return\": 1}"])
            // Half a request, then the line is hung up (as getty or systemd do
            // with TIOCVHANGUP): the agent's descriptor is dead from now on.
            let wakeUps = channel.inputWakeUps
            writeString(pty.master, "{\"execute\":\"guest-sync\",")
            #expect(drive { channel.inputWakeUps > wakeUps }, "the agent did not read the half request")
            let slave = pty.openSlave()
            #expect(cglib_ioctl_none(slave, UInt(TIOCVHANGUP)) == 0)
            close(slave)
            #expect(drive { agent.disconnects == 1 })
            #expect(agent.logMessages.contains("debug: received EOF"))
            // Re-opened after the delay. (Bytes a pty master writes while no
            // slave descriptor is open wait in the kernel until more input comes,
            // so the host speaks only once the port is open again.)
            #expect(drive { channel.isConnected })

            // The parser was reset: the half request of the old session does
            // not swallow the new one.
            writeString(pty.master, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":2}}\n")
            #expect(readLines(from: pty.master, until: "return") == ["{\"return\": 2}"])
            #expect(agent.fatalErrors == 0)
            #expect(agent.disconnects == 1)
        }
    }
}

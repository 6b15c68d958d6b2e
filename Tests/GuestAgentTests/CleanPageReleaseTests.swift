import Testing
@testable import GuestAgent

/// When the daemon gives its clean pages back: once start-up is over, then
/// each time the host has been quiet for a whole period after speaking, and
/// never while frozen. (That the pages really go is
/// `DaemonProcessTests.anIdleAgentGivesBackItsCleanPages`.)
@Suite struct CleanPageReleaseTests {
    private final class Probe {
        var releases = 0
        var frozen = false
    }

    private static func release(_ probe: Probe, quietMilliseconds: UInt32) -> CleanPageRelease {
        CleanPageRelease(quietMilliseconds: quietMilliseconds, isFrozen: { probe.frozen }, release: { probe.releases += 1 })
    }

    @Test func startUpReleasesAtOnce() {
        let probe = Probe()
        Self.release(probe, quietMilliseconds: 60_000).startUpDone()
        #expect(probe.releases == 1)
    }

    /// The period's timer (a minute here, so that only the test calls it)
    /// waits another period while the host spoke during the last one.
    @Test func aHostThatKeepsSpeakingPutsTheReleaseOff() {
        let probe = Probe()
        let pages = Self.release(probe, quietMilliseconds: 60_000)
        pages.hostSpoke()
        pages.hostSpoke()
        #expect(pages.tick() == true)
        #expect(probe.releases == 0)
        pages.hostSpoke()
        #expect(pages.tick() == true)
        #expect(pages.tick() == false)
        #expect(probe.releases == 1)
    }

    @Test func nothingIsReleasedWhileFrozen() {
        let probe = Probe()
        let pages = Self.release(probe, quietMilliseconds: 60_000)
        pages.hostSpoke()
        probe.frozen = true
        #expect(pages.tick() == false)
        #expect(probe.releases == 0)
    }

    /// Through GLib's own timer: a release after the quiet, and the timer
    /// armed again by the next input.
    @Test func eachQuietAfterInputEndsInARelease() {
        let probe = Probe()
        let pages = Self.release(probe, quietMilliseconds: 5)
        pages.hostSpoke()
        #expect(drive { probe.releases == 1 })
        pages.hostSpoke()
        #expect(drive { probe.releases == 2 })
        drive(for: 0.05) { false }
        #expect(probe.releases == 2, "one release per quiet")
    }

    /// GAState reports every chunk of input once it is answered, whatever
    /// it held: complete requests, part of one, a flush.
    @Test func everyChunkOfInputIsReported() {
        let host = InMemoryChannel()
        var chunks = 0
        host.agent.afterInput = { chunks += 1 }
        host.writeInbound(#"{"execute":"guest-ping"}"#)
        host.writeInbound(#"{"execute":"#)
        host.writeInbound([0xFF])
        #expect(chunks == 3)
        #expect(host.readOutbound() == Array(#"{"return": {}}"#.utf8) + [0x0A])
    }
}

import Foundation
import Glibc
import Testing
@testable import GuestAgent

@Suite struct NetworkInterfacesTests {
    /// A machine with loopback, ethernet with an alias, a tunnel and two
    /// ifb devices, and the reply for each of its interfaces in order.
    private func machine() throws -> (FixtureTree, [String]) {
        let tree = try FixtureTree()
        try tree.file("/getifaddrs", """
            lo
            lo 127.0.0.1 255.0.0.0
            ifb0
            eth0
            lo ::1 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff
            eth0 192.0.2.2 255.255.255.0
            eth0 fd00::2 ffff:ffff:ffff:ffff::
            eth0 fe80::fc:ff:fe00:1 ffff:ffff:ffff:ffff::
            eth0:1 10.0.0.5 255.0.0.0
            tun0 10.8.0.1
            ifb1

            """)
        try tree.file("/sys/class/net/lo/address", "00:00:00:00:00:00\n")
        try tree.file("/sys/class/net/ifb0/address", "2a:7d:62:d0:05:64\n")
        try tree.file("/sys/class/net/eth0/address", "02:fc:00:00:00:01\n")
        try tree.file("/proc/net/dev", """
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
              ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
              tun0: 1 2 3
              eth0: 142327892    2848    1    2    0     0          0         0   126750    1589    3    4    0     0       0          0
              tun0: 10 20 30 40 0 0 0 0 50 60 70 80 0 0 0 0

            """)
        let lo = #"{"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": ["#
            + #"{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}, "#
            + #"{"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128}], "#
            + #""statistics": {"rx-bytes": 3193, "rx-packets": 29, "rx-errs": 0, "rx-dropped": 0, "#
            + #""tx-bytes": 3193, "tx-packets": 29, "tx-errs": 0, "tx-dropped": 0}}"#
        let eth0 = #"{"name": "eth0", "hardware-address": "02:fc:00:00:00:01", "ip-addresses": ["#
            + #"{"ip-address": "192.0.2.2", "ip-address-type": "ipv4", "prefix": 24}, "#
            + #"{"ip-address": "fd00::2", "ip-address-type": "ipv6", "prefix": 64}, "#
            + #"{"ip-address": "fe80::fc:ff:fe00:1", "ip-address-type": "ipv6", "prefix": 64}], "#
            + #""statistics": {"rx-bytes": 142327892, "rx-packets": 2848, "rx-errs": 1, "rx-dropped": 2, "#
            + #""tx-bytes": 126750, "tx-packets": 1589, "tx-errs": 3, "tx-dropped": 4}}"#
        let alias = #"{"name": "eth0:1", "ip-addresses": [{"ip-address": "10.0.0.5", "ip-address-type": "ipv4", "prefix": 8}]}"#
        let tun0 = #"{"name": "tun0", "ip-addresses": [{"ip-address": "10.8.0.1", "ip-address-type": "ipv4", "prefix": 0}], "#
            + #""statistics": {"rx-bytes": 10, "rx-packets": 20, "rx-errs": 30, "rx-dropped": 40, "#
            + #""tx-bytes": 50, "tx-packets": 60, "tx-errs": 70, "tx-dropped": 80}}"#
        return (tree, [lo, #"{"name": "ifb0", "hardware-address": "2a:7d:62:d0:05:64"}"#, eth0, alias, tun0, #"{"name": "ifb1"}"#])
    }

    /// Interfaces without addresses have only a name and a link-layer
    /// address; statistics come with the first IP address.
    @Test func interfacesInFirstSeenOrder() throws {
        let (tree, expected) = try machine()
        expectReturn("guest-network-get-interfaces", "[" + expected.joined(separator: ", ") + "]", agent: tree.agent())
    }

    /// `exclude-interfaces`: names and fnmatch patterns leave interfaces
    /// out; the others keep their order and content.
    @Test(arguments: [
        (["lo"], [1, 2, 3, 4, 5]),
        (["eth0*", "tun?"], [0, 1, 5]),
        (["ifb[0-9]", "eth0"], [0, 3, 4]),
        (["*:*"], [0, 1, 2, 4, 5]),
        (["*"], []),
        (["eth", "veth*", "docker?", "cali*"], [0, 1, 2, 3, 4, 5]),
    ])
    func excludedInterfaces(patterns: [String], kept: [Int]) throws {
        let (tree, all) = try machine()
        let agent = tree.agent { $0.excludedInterfaces = patterns }
        expectReturn("guest-network-get-interfaces", "[" + kept.map { all[$0] }.joined(separator: ", ") + "]", agent: agent)
    }

    @Test func noInterfaceList() throws {
        let tree = try FixtureTree()
        expectError("guest-network-get-interfaces", "getifaddrs failed: No such file or directory", agent: tree.agent())
    }

    /// getifaddrs and SIOCGIFHWADDR on this machine.
    @Test func theRealMachinesLoopback() throws {
        let source = HostInterfaces()
        let entries = try source.addresses()
        #expect(entries.contains(InterfaceAddress(name: "lo", address: IPAddress("127.0.0.1"), netmask: IPAddress("255.0.0.0"))))
        #expect(try source.hardwareAddress(of: "lo") == .address([0, 0, 0, 0, 0, 0]))
        #expect(try source.hardwareAddress(of: "no-such-if0") == .failed(SystemError(errno: ENODEV)))
        #expect(SystemEnvironment.host().interfaceSource() is HostInterfaces)
    }
}

@Suite struct NetworkRouteTests {
    @Test func ipv4ThenIPv6Routes() throws {
        let tree = try FixtureTree()
        try tree.file("/proc/net/route", """
            Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
            eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
            eth0\t000200C0\t00000000\t0001\t2\t7\t0\t00FFFFFF\t1500\t64\t3
            not a route

            """)
        try tree.file("/proc/net/ipv6_route", """
            fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
            00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
            000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
            """)
        let routes = [
            #"{"iface": "eth0", "destination": "0.0.0.0", "metric": 100, "gateway": "192.0.2.1", "mask": "0.0.0.0", "#
                + #""irtt": 0, "flags": 3, "refcnt": 0, "use": 0, "window": 0, "mtu": 0, "version": 4}"#,
            #"{"iface": "eth0", "destination": "192.0.2.0", "metric": 0, "gateway": "0.0.0.0", "mask": "255.255.255.0", "#
                + #""irtt": 3, "flags": 1, "refcnt": 2, "use": 7, "window": 64, "mtu": 1500, "version": 4}"#,
            #"{"iface": "eth0", "destination": "fd00::", "metric": 256, "flags": 1, "refcnt": 1, "use": 0, "#
                + #""desprefixlen": "64", "source": "::", "srcprefixlen": "0", "nexthop": "::", "version": 6}"#,
            #"{"iface": "eth0", "destination": "::", "metric": 1024, "flags": 3, "refcnt": 2, "use": 0, "#
                + #""desprefixlen": "0", "source": "::", "srcprefixlen": "0", "nexthop": "fd00::1", "version": 6}"#,
            // The flags word is read into a C int, so the top bit spreads.
            #"{"iface": "lo", "destination": "::1", "metric": 0, "flags": 18446744071564165121, "refcnt": 2, "use": 0, "#
                + #""desprefixlen": "128", "source": "::", "srcprefixlen": "0", "nexthop": "::", "version": 6}"#,
            #"{"iface": "lo", "destination": "::", "metric": -1, "flags": 2097664, "refcnt": 1, "use": 0, "#
                + #""desprefixlen": "0", "source": "::", "srcprefixlen": "0", "nexthop": "::", "version": 6}"#,
        ]
        expectReturn("guest-network-get-route", "[" + routes.joined(separator: ", ") + "]", agent: tree.agent())
    }

    @Test func aMissingTableFailsTheCommand() throws {
        let tree = try FixtureTree()
        let agent = tree.agent()
        expectError("guest-network-get-route", #"open("/proc/net/route"): No such file or directory"#, agent: agent)
        try tree.file("/proc/net/route", "Iface\tDestination\n")
        expectError("guest-network-get-route", #"open("/proc/net/ipv6_route"): No such file or directory"#, agent: agent)
        try tree.file("/proc/net/ipv6_route", "")
        expectReturn("guest-network-get-route", "[]", agent: agent)
    }
}

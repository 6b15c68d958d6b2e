// Network: guest-network-get-interfaces, guest-network-get-route.

/// `guest-network-get-interfaces`: the interfaces in the order getifaddrs
/// first names them, each with its link-layer address and, once it has an
/// IP address, its addresses and statistics.
struct GuestNetworkGetInterfaces: @MainActor GuestAgentCommand {
    static let name = "guest-network-get-interfaces"

    enum AddressType: String, Encodable { case ipv4, ipv6 }

    struct IPAddressInfo: Encodable {
        let ipAddress: String
        let ipAddressType: AddressType
        let prefix: Int64

        enum CodingKeys: String, CodingKey {
            case ipAddress = "ip-address"
            case ipAddressType = "ip-address-type"
            case prefix
        }
    }

    struct InterfaceStatistics: Encodable {
        let rxBytes, rxPackets, rxErrs, rxDropped: UInt64
        let txBytes, txPackets, txErrs, txDropped: UInt64

        enum CodingKeys: String, CodingKey {
            case rxBytes = "rx-bytes", rxPackets = "rx-packets", rxErrs = "rx-errs", rxDropped = "rx-dropped"
            case txBytes = "tx-bytes", txPackets = "tx-packets", txErrs = "tx-errs", txDropped = "tx-dropped"
        }
    }

    struct Interface: Encodable {
        let name: String
        var hardwareAddress: String?
        var ipAddresses: [IPAddressInfo]?
        var statistics: InterfaceStatistics?

        enum CodingKeys: String, CodingKey {
            case name
            case hardwareAddress = "hardware-address"
            case ipAddresses = "ip-addresses"
            case statistics
        }
    }

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> [Interface] {
        let source = agent.system.interfaceSource()
        let entries: [InterfaceAddress]
        do {
            entries = try source.addresses()
        } catch {
            throw QMPError("getifaddrs failed: \(error)")
        }
        var interfaces: [Interface] = []
        var indexByName: [String: Int] = [:]
        var statistics: [String: InterfaceStatistics]?
        // Beyond qemu-ga (`exclude-interfaces`): the host never hears of these.
        let excluded = agent.config.excludedInterfaces ?? []
        for entry in entries where !anyPatternMatches(excluded, entry.name) {
            agent.log.debug("Processing \(entry.name) interface")
            let index: Int
            if let known = indexByName[entry.name] {
                index = known
            } else {
                index = interfaces.count
                indexByName[entry.name] = index
                var interface = Interface(name: entry.name)
                interface.hardwareAddress = try hardwareAddress(of: entry.name, source: source, log: agent.log)
                interfaces.append(interface)
            }
            guard let address = entry.address else { continue }
            // The prefix is the number of bits set in the netmask.
            let prefix = entry.netmask?.bytes.reduce(0) { $0 + $1.nonzeroBitCount } ?? 0
            let item = IPAddressInfo(ipAddress: address.text, ipAddressType: address.isIPv6 ? .ipv6 : .ipv4,
                                     prefix: Int64(prefix))
            interfaces[index].ipAddresses = (interfaces[index].ipAddresses ?? []) + [item]
            if interfaces[index].statistics == nil {
                if statistics == nil { statistics = readStatistics(agent.system, log: agent.log) }
                interfaces[index].statistics = statistics?[entry.name]
                if interfaces[index].statistics == nil {
                    agent.log.debug("/proc/net/dev: Interface '\(entry.name)' not found")
                }
            }
        }
        return interfaces
    }

    /// `xx:xx:xx:xx:xx:xx`, or nil (logged) when the interface has none.
    private static func hardwareAddress(of name: String, source: any InterfaceSource, log: GALog) throws(QMPError) -> String? {
        let query: HardwareAddressQuery
        do {
            query = try source.hardwareAddress(of: name)
        } catch {
            throw QMPError("failed to create socket: \(error)")
        }
        switch query {
        case .address(let bytes):
            return bytes.map { hexByte($0) }.joined(separator: ":")
        case .failed(let error):
            if error == .addressNotAvailable {
                log.debug("failed to get MAC address of \(name): \(error)")
            } else {
                log.warning("failed to get MAC address of \(name): \(error)")
            }
            return nil
        }
    }

    private static func hexByte(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return byte < 16 ? "0" + digits : digits
    }

    /// The counters of /proc/net/dev by interface name, read once per
    /// command: `NAME: ` and 16 numbers, of which qemu-ga reports the
    /// first four of receive and of transmit. The first parsable line of a
    /// name counts.
    private static func readStatistics(_ system: SystemEnvironment, log: GALog) -> [String: InterfaceStatistics] {
        let text: [UInt8]
        do {
            text = try system.fileContents("/proc/net/dev")
        } catch {
            log.debug("failed to open network stats /proc/net/dev: \(error)")
            return [:]
        }
        let fields = [CScan.Field](repeating: .long, count: 16)
        let format = [String](repeating: "%lld", count: 16).joined(separator: " ")
        var result: [String: InterfaceStatistics] = [:]
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let trimmed = line.drop(while: isASCIISpace)
            guard let colon = trimmed.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = String(decoding: trimmed[..<colon], as: UTF8.self)
            guard result[name] == nil else { continue }
            let numbers = CScan.scan(trimmed[(colon + 1)...], format, fields)
            guard numbers.count == 16 else { continue }
            func counter(_ index: Int) -> UInt64 { UInt64(bitPattern: numbers.signed(index)) }
            result[name] = InterfaceStatistics(
                rxBytes: counter(0), rxPackets: counter(1), rxErrs: counter(2), rxDropped: counter(3),
                txBytes: counter(8), txPackets: counter(9), txErrs: counter(10), txDropped: counter(11))
        }
        return result
    }
}

/// `guest-network-get-route` (newest): the IPv4 routes of /proc/net/route,
/// then the IPv6 routes of /proc/net/ipv6_route, in file order.
struct GuestNetworkGetRoute: @MainActor GuestAgentCommand {
    static let name = "guest-network-get-route"

    struct Route: Encodable {
        let iface: String
        let destination: String
        let metric: Int64
        var gateway: String?
        var mask: String?
        var irtt: Int64?
        var flags: UInt64?
        var refcnt: Int64?
        var use: Int64?
        var window: Int64?
        var mtu: Int64?
        var desprefixlen: String?
        var source: String?
        var srcprefixlen: String?
        var nexthop: String?
        let version: Int64
    }

    static func run(_ arguments: NoArguments, agent: GAState) throws(QMPError) -> [Route] {
        var routes: [Route] = []
        var failure: QMPError?
        for (path, parse) in [("/proc/net/route", ipv4Route), ("/proc/net/ipv6_route", ipv6Route)] {
            let text: [UInt8]
            do {
                text = try agent.system.fileContents(path)
            } catch {
                failure = failure ?? QMPError("open(\"\(path)\"): \(error)")
                continue
            }
            var lines = text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            if lines.last?.isEmpty == true { lines.removeLast() }
            // The IPv4 table starts with a header line.
            let body = path == "/proc/net/route" ? lines.dropFirst() : lines[...]
            routes += body.compactMap(parse)
        }
        if let failure { throw failure }
        return routes
    }

    /// `Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window
    /// IRTT`: addresses as 32-bit hexadecimal in host (little-endian) order.
    private static func ipv4Route(_ line: ArraySlice<UInt8>) -> Route? {
        let fields = CScan.scan(line, "%s %X %X %x %d %d %d %X %d %d %d", [
            .string, .unsignedInt, .unsignedInt, .unsignedInt, .int, .int, .int, .unsignedInt, .int, .int, .int,
        ])
        guard fields.count == 11 else { return nil }
        func address(_ index: Int) -> String {
            let value = UInt32(fields.unsigned(index))
            return IPAddress(bytes: (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }).text
        }
        return Route(
            iface: fields.string(0), destination: address(1), metric: fields.signed(6), gateway: address(2),
            mask: address(7), irtt: fields.signed(10), flags: fields.unsigned(3), refcnt: fields.signed(4),
            use: fields.signed(5), window: fields.signed(9), mtu: fields.signed(8), version: 4)
    }

    /// `dst dstlen src srclen nexthop metric refcnt use flags iface`, all
    /// hexadecimal, read into C ints (so a flags word with the top bit set
    /// becomes a huge uint64, as in qemu-ga).
    private static func ipv6Route(_ line: ArraySlice<UInt8>) -> Route? {
        let fields = CScan.scan(line, "%32s %x %32s %x %32s %x %x %x %x %s", [
            .string, .unsignedInt, .string, .unsignedInt, .string,
            .unsignedInt, .unsignedInt, .unsignedInt, .unsignedInt, .string,
        ])
        guard fields.count == 10, let destination = ipv6Address(fields.string(0)) else { return nil }
        func int(_ index: Int) -> Int64 { Int64(Int32(bitPattern: UInt32(fields.unsigned(index)))) }
        return Route(
            iface: fields.string(9), destination: destination, metric: int(5),
            flags: UInt64(bitPattern: int(8)), refcnt: int(6), use: int(7),
            desprefixlen: String(int(1)), source: ipv6Address(fields.string(2)),
            srcprefixlen: String(int(3)), nexthop: ipv6Address(fields.string(4)), version: 6)
    }

    /// 32 hexadecimal digits, two per byte, each pair read as by `%02hhx`.
    private static func ipv6Address(_ hex: String) -> String? {
        var bytes: [UInt8] = []
        for offset in stride(from: 0, to: 32, by: 2) {
            let pair = CScan.scan(Substring(hex.utf8.dropFirst(offset)), "%02hhx", [.unsignedChar])
            guard pair.count == 1 else { return nil }
            bytes.append(UInt8(pair.unsigned(0)))
        }
        return IPAddress(bytes: bytes).text
    }
}

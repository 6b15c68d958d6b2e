import CGLib
import Glibc

/// An IPv4 or IPv6 address in network byte order (4 or 16 bytes).
package struct IPAddress: Equatable {
    package let bytes: [UInt8]

    var isIPv6: Bool { bytes.count == 16 }

    /// `inet_ntop`'s text: dotted quad, or the compressed IPv6 form.
    var text: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = isIPv6 ? AF_INET6 : AF_INET
        _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `inet_pton` of either family.
    package init?(_ text: String) {
        var buffer = [UInt8](repeating: 0, count: 16)
        if buffer.withUnsafeMutableBytes({ inet_pton(AF_INET, text, $0.baseAddress) }) == 1 {
            bytes = Array(buffer.prefix(4))
        } else if buffer.withUnsafeMutableBytes({ inet_pton(AF_INET6, text, $0.baseAddress) }) == 1 {
            bytes = buffer
        } else {
            return nil
        }
    }

    package init(bytes: [UInt8]) { self.bytes = bytes }
}

/// One entry of `getifaddrs`: an interface name with an IPv4 or IPv6
/// address and its netmask, or with nothing qemu-ga reports (a link-layer
/// entry).
package struct InterfaceAddress: Equatable {
    package let name: String
    package var address: IPAddress?
    package var netmask: IPAddress?

    package init(name: String, address: IPAddress? = nil, netmask: IPAddress? = nil) {
        self.name = name
        self.address = address
        self.netmask = netmask
    }
}

/// The result of `SIOCGIFHWADDR` for an interface.
package enum HardwareAddressQuery: Equatable {
    case address([UInt8])
    case failed(SystemError)
}

/// Where interface names, addresses and link-layer addresses come from:
/// `getifaddrs` and `SIOCGIFHWADDR` on the real machine. Neither has a file
/// a fixture tree could hold, so a tree gives them as `/getifaddrs` (one
/// entry per line: `NAME`, or `NAME ADDRESS [NETMASK]`) and as the
/// interfaces' `address` files in /sys/class/net (an interface without one
/// fails the query with ENODEV, as an unknown one does).
package protocol InterfaceSource {
    func addresses() throws(SystemError) -> [InterfaceAddress]
    /// Throws when no socket for the query can be created.
    func hardwareAddress(of name: String) throws(SystemError) -> HardwareAddressQuery
}

/// getifaddrs, and SIOCGIFHWADDR on one AF_INET socket.
package final class HostInterfaces: InterfaceSource {
    private var socketDescriptor: Int32 = -1

    deinit { if socketDescriptor >= 0 { close(socketDescriptor) } }

    package func addresses() throws(SystemError) -> [InterfaceAddress] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { throw SystemError.current }
        defer { freeifaddrs(list) }
        var result: [InterfaceAddress] = []
        var next = list
        while let entry = next?.pointee {
            next = entry.ifa_next
            var item = InterfaceAddress(name: String(cString: entry.ifa_name))
            item.address = Self.ipAddress(entry.ifa_addr)
            if item.address != nil { item.netmask = Self.ipAddress(entry.ifa_netmask) }
            result.append(item)
        }
        return result
    }

    private static func ipAddress(_ address: UnsafeMutablePointer<sockaddr>?) -> IPAddress? {
        guard let address else { return nil }
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                withUnsafeBytes(of: $0.pointee.sin_addr) { IPAddress(bytes: Array($0)) }
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                withUnsafeBytes(of: $0.pointee.sin6_addr) { IPAddress(bytes: Array($0)) }
            }
        default:
            return nil
        }
    }

    package func hardwareAddress(of name: String) throws(SystemError) -> HardwareAddressQuery {
        if socketDescriptor < 0 {
            socketDescriptor = socket(PF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard socketDescriptor >= 0 else { throw SystemError.current }
        }
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { buffer in
            buffer.copyBytes(from: name.utf8.prefix(buffer.count - 1))
        }
        guard cglib_ioctl_pointer(socketDescriptor, UInt(SIOCGIFHWADDR), &request) == 0 else {
            return .failed(SystemError.current)
        }
        return withUnsafeBytes(of: request.ifr_ifru.ifru_hwaddr.sa_data) { .address(Array($0.prefix(6))) }
    }
}

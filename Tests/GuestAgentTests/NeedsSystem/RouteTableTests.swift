import Foundation
import Testing
import TestRequirements
@testable import GuestAgent

extension NeedsSystem {
    /// guest-network-get-route on this machine, checked against `ip route`
    /// (iproute2).
    @Suite struct RouteTableTests {
        /// This machine's routes: exactly the lines of /proc/net/route and
        /// /proc/net/ipv6_route (decoded here independently), and every route
        /// of `ip route` in its table.
        @Test func theRealMachine() throws {
            let reply = replyLine("guest-network-get-route", agent: GAState(system: .host()))
            let object = try JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any]
            let routes = try #require(object?["return"] as? [[String: Any]])

            var expected: [String] = []
            let ipv4 = try String(contentsOfFile: "/proc/net/route", encoding: .utf8).split(separator: "\n").dropFirst()
            for line in ipv4 {
                let f = line.split(whereSeparator: \.isWhitespace)
                func quad(_ hex: Substring) -> String {
                    let value = UInt32(hex, radix: 16)!
                    return (0..<4).map { String(value >> (8 * $0) & 0xFF) }.joined(separator: ".")
                }
                expected.append("4 \(f[0]) \(quad(f[1])) gw \(quad(f[2])) mask \(quad(f[7])) metric \(f[6])")
            }
            let ipv6 = try String(contentsOfFile: "/proc/net/ipv6_route", encoding: .utf8).split(separator: "\n")
            for line in ipv6 {
                let f = line.split(whereSeparator: \.isWhitespace)
                func address(_ hex: Substring) -> String {
                    IPAddress(bytes: stride(from: 0, to: 32, by: 2).map {
                        UInt8(hex.dropFirst($0).prefix(2), radix: 16)!
                    }).text
                }
                let metric = Int32(bitPattern: UInt32(f[5], radix: 16)!)
                expected.append("6 \(f[9]) \(address(f[0]))/\(Int(f[1], radix: 16)!) via \(address(f[4])) metric \(metric)")
            }
            let actual = routes.map { route -> String in
                if route["version"] as? Int == 4 {
                    return "4 \(route["iface"]!) \(route["destination"]!) gw \(route["gateway"]!) mask \(route["mask"]!) metric \(route["metric"]!)"
                }
                return "6 \(route["iface"]!) \(route["destination"]!)/\(route["desprefixlen"]!) via \(route["nexthop"]!) metric \(route["metric"]!)"
            }
            #expect(actual == expected)

            // `ip route`: destination/prefix, gateway and device of every main-table route.
            for line in try run("/usr/sbin/ip", ["-4", "route", "show", "table", "main"]) {
                let words = line.split(separator: " ").map(String.init)
                let (network, length) = splitPrefix(words[0] == "default" ? "0.0.0.0/0" : words[0], bits: 32)
                let gateway = words.firstIndex(of: "via").map { words[$0 + 1] } ?? "0.0.0.0"
                let device = words[words.firstIndex(of: "dev")! + 1]
                let mask = (0..<4).map { byte in
                    let bits = min(8, max(0, length - 8 * byte))
                    return String(bits == 0 ? 0 : 0xFF << (8 - bits) & 0xFF)
                }.joined(separator: ".")
                #expect(actual.contains { $0.hasPrefix("4 \(device) \(network) gw \(gateway) mask \(mask) ") }, "\(line)")
            }
            for line in try run("/usr/sbin/ip", ["-6", "route", "show", "table", "main"]) {
                let words = line.split(separator: " ").map(String.init)
                let (network, length) = splitPrefix(words[0] == "default" ? "::/0" : words[0], bits: 128)
                let gateway = words.firstIndex(of: "via").map { words[$0 + 1] } ?? "::"
                let device = words[words.firstIndex(of: "dev")! + 1]
                #expect(actual.contains { $0.hasPrefix("6 \(device) \(network)/\(length) via \(gateway) ") }, "\(line)")
            }
        }

        private func splitPrefix(_ text: String, bits: Int) -> (String, Int) {
            let parts = text.split(separator: "/")
            return (String(parts[0]), parts.count > 1 ? Int(parts[1])! : bits)
        }

        private func run(_ program: String, _ arguments: [String]) throws -> [Substring] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(program) \(arguments) failed")
            return String(decoding: output, as: UTF8.self).split(separator: "\n")
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Loopback ports that were free a moment ago, for the servers a test or a benchmark is about to start: each is
/// bound to 127.0.0.1:0 (all at once, so they differ), read back and released.
public enum LoopbackPort {
    /// One free port.
    public static func free() throws -> Int { try free(1)[0] }

    /// Two different free ports, for a server's client and admin listeners.
    public static func freePair() throws -> (Int, Int) {
        let ports = try free(2)
        return (ports[0], ports[1])
    }

    /// `count` different free ports.
    public static func free(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        var ports: [Int] = []
        while ports.count < count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw LoopbackPortError(description: "socket(): \(String(cString: strerror(errno)))") }
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
                }
            }
            guard bound else {
                throw LoopbackPortError(description: "no free loopback port: \(String(cString: strerror(errno)))")
            }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }
}

/// No free loopback port could be found.
public struct LoopbackPortError: Error, Sendable, CustomStringConvertible {
    public let description: String
}


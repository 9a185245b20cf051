import CRoomRingSys
import Glibc
import NIOCore

/// A failed system call, with its errno.
struct SystemCallError: Error, CustomStringConvertible {
    let call: String
    let code: Int32

    init(_ call: String, _ code: Int32 = errno) {
        self.call = call
        self.code = code
    }

    var description: String { "\(call): \(String(cString: strerror(code)))" }
}

/// The socket calls of the proxy's tunnel loops, on raw descriptors.
enum Sockets {
    /// A non-blocking listening socket on `address`; with `reusePort`, several loops can each bind the same port.
    static func listen(on address: SocketAddress, reusePort: Bool, backlog: Int32 = 4096) throws -> Int32 {
        let fd = rr_tcp_socket(Int32(address.protocol.rawValue))
        guard fd >= 0 else { throw SystemCallError("socket") }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size)
        if reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size) }
        // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one system call less per client.
        _ = rr_nodelay(fd)
        let bound = address.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) }
        guard bound == 0 else {
            let error = SystemCallError("bind \(address)")
            close(fd)
            throw error
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let error = SystemCallError("listen")
            close(fd)
            throw error
        }
        return fd
    }

    /// The port a socket is bound to.
    static func localPort(_ fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        return ok ? Int(rr_port(&storage)) : 0
    }

    /// Starts a non-blocking connect; the descriptor, or the errno of a call that failed at once.
    static func connect(to address: SocketAddress) -> Result<Int32, SystemCallError> {
        let fd = rr_tcp_socket(Int32(address.protocol.rawValue))
        guard fd >= 0 else { return .failure(SystemCallError("socket")) }
        _ = rr_nodelay(fd)
        let result = address.withSockAddr { Glibc.connect(fd, $0, socklen_t($1)) }
        if result != 0, errno != EINPROGRESS {
            let error = SystemCallError("connect")
            close(fd)
            return .failure(error)
        }
        return .success(fd)
    }

    /// The IP address in `storage`, as text.
    static func ipAddress(of storage: sockaddr_storage) -> String {
        var storage = storage
        return String(unsafeUninitializedCapacity: 64) { buffer in
            buffer.withMemoryRebound(to: CChar.self) { text in
                guard rr_ip_text(&storage, text.baseAddress, socklen_t(text.count)) == 0 else { return 0 }
                return strlen(text.baseAddress!)
            }
        }.nonEmpty ?? "unknown"
    }
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}

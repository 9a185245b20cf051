import NIOHTTP1

/// Bearer-token checks shared by every admin API.
public enum AdminAuth {
    /// nil when allowed, else the refusal. Without a configured token, reads are open and writes refused.
    public static func check(_ head: HTTPRequestHead, token: String?, write: Bool) -> HTTPResponse? {
        guard let token, !token.isEmpty else {
            return write ? .error(.forbidden, code: "no_admin_token",
                                  "this process was started without an admin token; writes are disabled") : nil
        }
        let offered = head.headers.first(name: "authorization") ?? ""
        guard offered.hasPrefix("Bearer "), constantTimeEqual(Array(offered.utf8.dropFirst(7)), Array(token.utf8))
        else {
            return .error(.unauthorized, code: "unauthorized", "missing or wrong bearer token",
                          headers: ["WWW-Authenticate": "Bearer"])
        }
        return nil
    }

    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

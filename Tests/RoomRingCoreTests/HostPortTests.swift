import Testing

@testable import RoomRingCore

/// `host:port` as written in rings and flags: `127.0.0.1:9001`, `[::1]:9001`, `shard-0.rr:9001`.
@Suite("HostPort")
struct HostPortTests {
    @Test(
        "valid forms parse into host and port",
        arguments: [
            ("127.0.0.1:9001", "127.0.0.1", 9001),
            ("shard-0.rr:9001", "shard-0.rr", 9001),
            ("localhost:80", "localhost", 80),
            ("h:1", "h", 1),
            ("h:0", "h", 0),
            ("h:65535", "h", 65535),
            ("0.0.0.0:8080", "0.0.0.0", 8080),
            ("Shard_1.Example.COM:443", "Shard_1.Example.COM", 443),
            ("[::1]:9001", "::1", 9001),
            ("[::]:0", "::", 0),
            ("[2001:db8::42]:65535", "2001:db8::42", 65535),
            ("[fe80::1%eth0]:80", "fe80::1%eth0", 80),
            ("[::ffff:127.0.0.1]:9101", "::ffff:127.0.0.1", 9101),
        ])
    func valid(text: String, host: String, port: Int) throws {
        let parsed = try #require(HostPort(text), "rejected \(text)")
        #expect(parsed.host == host)
        #expect(parsed.port == port)
        #expect(parsed == HostPort(host: host, port: port))
    }

    @Test(
        "malformed forms are rejected",
        arguments: [
            // Missing parts.
            "", ":", "nohost", ":80", "host:", "[::1]", "[::1]:", "[]:80", "[:80",
            // Port out of range or not decimal digits.
            "1.2.3.4:99999", "1.2.3.4:65536", "h:123456", "h:-1", "h:+80", "h:8a", "h: 80", "h:80 ", "h:0x50",
            "h:８０", "h:٨٠",
            // IPv6 without brackets, or bracket errors.
            "::1:80", "::1", "2001:db8::1:443", "[::1]80", "[::1]x:80", "[::1]]:80", "[::1", "::1]:80",
            // Bad host bytes.
            " host:80", "ho st:80", "host/x:80", "http://host:80", "hôst:80", "ho\tst:80", "host\n:80", "h\u{7F}:80",
            "a:b:80",
        ])
    func invalid(text: String) {
        #expect(HostPort(text) == nil, "accepted \(text.debugDescription)")
    }

    @Test("host length: 253 bytes accepted, 254 rejected")
    func hostLength() {
        #expect(HostPort(String(repeating: "a", count: 253) + ":1")?.host.utf8.count == 253)
        #expect(HostPort(String(repeating: "a", count: 254) + ":1") == nil)
    }

    @Test("every port 0...65535 round-trips; 65536... does not")
    func ports() {
        for port in 0...65535 {
            #expect(HostPort("h:\(port)")?.port == port)
        }
        for port in [65536, 70000, 99999] {
            #expect(HostPort("h:\(port)") == nil)
        }
    }

    @Test(
        "description writes host:port, bracketing IPv6 hosts, and parses back",
        arguments: [
            ("127.0.0.1:9001", "127.0.0.1:9001"),
            ("shard-0.rr:9001", "shard-0.rr:9001"),
            ("[::1]:9001", "[::1]:9001"),
            ("[2001:db8::42]:443", "[2001:db8::42]:443"),
            ("[2001:db8:0:0:1:0:0:1]:443", "[2001:db8:0:0:1:0:0:1]:443"),
        ])
    func description(text: String, expected: String) throws {
        let parsed = try #require(HostPort(text))
        #expect(parsed.description == expected)
        #expect(HostPort(parsed.description) == parsed)
    }

    @Test("the memberwise initializer and description agree")
    func memberwise() {
        #expect(HostPort(host: "::1", port: 80).description == "[::1]:80")
        #expect(HostPort(host: "2001:db8:0:0:1:0:0:1", port: 80).description == "[2001:db8:0:0:1:0:0:1]:80")
        #expect(HostPort(host: "example.com", port: 8443).description == "example.com:8443")
        #expect(HostPort(host: "a", port: 1) != HostPort(host: "a", port: 2))
        #expect(HostPort(host: "a", port: 1) != HostPort(host: "b", port: 1))
    }
}

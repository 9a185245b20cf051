import Foundation

/// The HAProxy configuration the benchmark runs: `deploy/haproxy/haproxy.cfg` with the listening address, the
/// shard addresses and `maxconn` substituted, nothing else changed.
struct ProxyBenchHAProxyConfig {
    /// The template text and where it came from.
    var template: String
    var source: String

    /// Finds `deploy/haproxy/haproxy.cfg`: the explicit path, else in the working directory or above the
    /// executable (a `.build/<triple>/release/roomring` in a checkout), else the copy built into the binary.
    static func locate(explicit: String?) throws -> ProxyBenchHAProxyConfig {
        if let explicit {
            guard let text = try? String(contentsOfFile: explicit, encoding: .utf8) else {
                throw ProxyBenchError("cannot read HAProxy config \(explicit)")
            }
            return .init(template: text, source: explicit)
        }
        var directories = [FileManager.default.currentDirectoryPath]
        var directory = URL(fileURLWithPath: ProxyBenchSystem.executablePath).deletingLastPathComponent()
        for _ in 0..<6 {
            directories.append(directory.path)
            directory = directory.deletingLastPathComponent()
        }
        for candidate in directories.map({ $0 + "/deploy/haproxy/haproxy.cfg" }) {
            if let text = try? String(contentsOfFile: candidate, encoding: .utf8) {
                return .init(template: text, source: candidate)
            }
        }
        return .init(template: builtIn, source: "built-in copy of deploy/haproxy/haproxy.cfg")
    }

    /// The template with `frontend`'s `bind` set to `listen`, `backend`'s servers set to `servers` (id, address; the
    /// options of the template's first `server` line kept), and `maxconn` in `global` and `defaults` set.
    func render(listen: String, servers: [(id: String, address: String)], maxconn: Int) throws -> String {
        var output: [String] = []
        var section = ""
        var bound = false
        var serversWritten = false
        for line in template.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            let indent = String(line.prefix { $0 == " " || $0 == "\t" })
            if let first = line.first, first != " ", first != "\t", first != "#" {
                section = words.first ?? ""
                output.append(line)
                continue
            }
            switch (section, words.first) {
            case ("frontend", "bind"):
                output.append("\(indent)bind \(listen)")
                bound = true
            case ("backend", "server"):
                guard !serversWritten else { continue }
                serversWritten = true
                let options = Self.dropComment(words.dropFirst(3)).joined(separator: " ")
                for server in servers {
                    output.append("\(indent)server \(server.id) \(server.address)" + (options.isEmpty ? "" : " \(options)"))
                }
            case ("global", "maxconn"), ("defaults", "maxconn"):
                output.append("\(indent)maxconn \(maxconn)")
            default:
                output.append(line)
            }
        }
        guard bound, serversWritten else {
            throw ProxyBenchError("\(source): expected a `bind` line in a frontend and `server` lines in a backend")
        }
        return output.joined(separator: "\n")
    }

    private static func dropComment(_ words: ArraySlice<String>) -> [String] {
        Array(words.prefix { !$0.hasPrefix("#") })
    }

    /// Used only when the checkout's file cannot be found: the directives of deploy/haproxy/haproxy.cfg without its
    /// comments (keep the two in step).
    static let builtIn = """
        global
            maxconn 50000

        defaults
            mode http
            maxconn 50000
            option forwardfor
            option http-server-close
            timeout http-request 5s
            timeout connect 2s
            timeout client 30s
            timeout server 30s
            timeout tunnel 300s
            timeout client-fin 10s
            timeout server-fin 10s

        frontend rooms
            bind 127.0.0.1:8080
            default_backend shards

        backend shards
            balance hash path,field(3,/)
            hash-type consistent
            option httpchk
            http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host roomring
            http-check expect status 200
            default-server inter 2s fall 3 rise 2
            server s1 127.0.0.1:9001 check
            server s2 127.0.0.1:9002 check
            server s3 127.0.0.1:9003 check

        """
}

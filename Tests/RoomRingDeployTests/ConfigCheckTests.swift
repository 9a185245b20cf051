import Foundation
import RoomRingCore
import Testing

/// The shipped configurations pass their own tools' checks, parse, and agree with each other.
@Suite struct ConfigCheckTests {
    @Test func haproxyAcceptsTheConfigs() async throws {
        guard let haproxy = Tool.require("haproxy", for: "haproxy -c") else { return }
        var configs = ["haproxy/roomring.cfg"]
        // The benchmark's template, when present, must stay valid too.
        if FileManager.default.fileExists(atPath: Deploy.url("haproxy/haproxy.cfg").path) {
            configs.append("haproxy/haproxy.cfg")
        }
        for config in configs {
            let result = try await Tool.run(haproxy, ["-c", "-f", Deploy.url(config).path])
            #expect(result.status == 0, "haproxy -c rejected deploy/\(config):\n\(result.output)")
        }
    }

    @Test func nginxAcceptsTheConfig() async throws {
        guard let nginx = Tool.require("nginx", for: "nginx -t") else { return }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // roomring.conf belongs in the http {} context (conf.d), as the user would include it.
        let main = try directory.write("nginx.conf", NginxHarness.main(including: Deploy.url("nginx/roomring.conf").path,
                                                                       prefix: directory.url.path, foreground: false))
        let result = try await Tool.run(nginx, ["-t", "-p", directory.url.path, "-e", directory.path("error.log"),
                                                "-c", main.path])
        #expect(result.status == 0, "nginx -t rejected deploy/nginx/roomring.conf:\n\(result.output)")
    }

    @Test func systemdUnitsVerify() async throws {
        guard let analyze = Tool.require("systemd-analyze", for: "systemd-analyze verify") else { return }
        guard let binary = RoomRingBinary.url else {
            print("SKIP systemd-analyze verify: roomring binary not found next to the tests")
            return
        }
        // verify checks that ExecStart's program exists: point the units at the built binary. The template is
        // verified as an instance, the way systemd loads it.
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var units: [URL] = []
        for (source, name) in [("roomring-shard@.service", "roomring-shard@s1.service"),
                               ("roomring-proxy.service", "roomring-proxy.service")] {
            let text = try Deploy.text("systemd/\(source)")
            #expect(text.contains("ExecStart=/usr/local/bin/roomring "))
            units.append(try directory.write(name, text.replacingOccurrences(of: "/usr/local/bin/roomring",
                                                                                with: binary.path)))
        }
        let result = try await Tool.run(analyze, ["verify", "--man=no"] + units.map(\.path))
        let complaints = result.output.split(separator: "\n").filter { line in
            line.contains(directory.url.path) || line.contains("roomring")
        }
        #expect(result.status == 0 && complaints.isEmpty, "systemd-analyze verify:\n\(result.output)")
        for text in try ["roomring-shard@.service", "roomring-proxy.service"].map({ try Deploy.text("systemd/\($0)") }) {
            for setting in ["User=roomring", "NoNewPrivileges=yes", "ProtectSystem=strict", "KillSignal=SIGTERM"] {
                #expect(text.contains(setting), "unit lacks \(setting)")
            }
        }
    }

    @Test func everyYAMLFileParsesAndTheManifestsHaveTheirParts() async throws {
        guard YAML.python != nil else {
            print("SKIP YAML parsing: no python3 with PyYAML (Debian: python3-yaml; .ci/run installs it)")
            return
        }
        let files = Deploy.files().filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
        #expect(files.count >= 5)
        let parsed = try await YAML.load(files.map { Deploy.root.appendingPathComponent($0).path })
        #expect(parsed.count == files.count)

        var kinds: [String: [[String: Any]]] = [:]
        for file in files where file.hasPrefix("deploy/k8s/") {
            for case let object as [String: Any] in parsed[Deploy.root.appendingPathComponent(file).path] ?? [] {
                kinds[object["kind"] as? String ?? "?", default: []].append(object)
            }
        }
        for kind in ["StatefulSet", "Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "Kustomization"] {
            #expect(kinds[kind] != nil, "deploy/k8s has no \(kind)")
        }
        let headless = (kinds["Service"] ?? []).contains { ($0["spec"] as? [String: Any])?["clusterIP"] as? String == "None" }
        #expect(headless, "the shards' Service must be headless")
        // Probes and the preStop drain, read from the parsed manifests rather than grepped.
        let workloads = (kinds["StatefulSet"] ?? []) + (kinds["Deployment"] ?? [])
        let json = try JSONSerialization.data(withJSONObject: workloads, options: [.withoutEscapingSlashes])
        let manifests = String(decoding: json, as: UTF8.self)
        for needle in ["\"readinessProbe\"", "\"livenessProbe\"", "\"/readyz\"", "\"/healthz\"", "\"preStop\""] {
            #expect(manifests.contains(needle), "workloads lack \(needle)")
        }

        // The ring in the ConfigMap names exactly the StatefulSet's pods, at their headless-Service addresses.
        let configMap = try #require(kinds["ConfigMap"]?.first { ($0["metadata"] as? [String: Any])?["name"] as? String == "roomring-ring" })
        let ringText = try #require((configMap["data"] as? [String: Any])?["ring.json"] as? String)
        let ring = try RingDocument.decode(Array(ringText.utf8))
        let statefulSet = try #require(kinds["StatefulSet"]?.first)
        let replicas = try #require((statefulSet["spec"] as? [String: Any])?["replicas"] as? Int)
        #expect(ring.shards.map(\.id) == (0..<replicas).map { "roomring-shard-\($0)" })
        #expect(ring.shards.allSatisfy { $0.address == "\($0.id).roomring-shard:9001" && $0.admin == "\($0.id).roomring-shard:9101" })

        // Compose: a proxy, three shards whose ids are the ring's, and Redis.
        let compose = try #require(parsed[Deploy.url("docker/compose.yaml").path]?.first as? [String: Any])
        let services = try #require(compose["services"] as? [String: Any])
        #expect(Set(services.keys) == ["proxy", "shard-1", "shard-2", "shard-3", "redis"])
        let composeRing = try RingDocument.decode(Array(try Data(contentsOf: Deploy.url("docker/ring.json"))))
        for (index, shard) in composeRing.shards.enumerated() {
            let command = ((services["shard-\(index + 1)"] as? [String: Any])?["command"] as? [String]) ?? []
            #expect(command.contains(shard.id) && shard.address == "shard-\(index + 1):9001", "compose shard-\(index + 1)")
        }
    }

    @Test func everyRingFileDecodes() throws {
        let rings = Deploy.files().filter { $0.hasSuffix(".json") }
        #expect(!rings.isEmpty)
        for file in rings {
            let data = try Data(contentsOf: Deploy.root.appendingPathComponent(file))
            #expect(throws: Never.self, "\(file)") { try RingDocument.decode(Array(data)) }
        }
    }

    @Test func dockerfileIsMultiStageStaticAndNonRoot() throws {
        let text = try Deploy.text("docker/Dockerfile")
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.filter { $0.hasPrefix("FROM ") }.count >= 2)
        #expect(text.contains("--static-swift-stdlib"))
        let user = try #require(lines.last { $0.hasPrefix("USER ") })
        #expect(!["USER root", "USER 0", "USER 0:0"].contains(user))
    }
}

/// A fresh directory under the system's temporary directory (removed with `remove()`; left for post-mortems
/// otherwise, which /tmp cleanup handles).
struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("roomring-deploy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> URL {
        let file = url.appendingPathComponent(name)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// The main nginx.conf around deploy/nginx/roomring.conf: everything in the temporary directory.
enum NginxHarness {
    static func main(including file: String, prefix: String, foreground: Bool) -> String {
        """
        \(foreground ? "daemon off;" : "")
        worker_processes 1;
        pid \(prefix)/nginx.pid;
        error_log \(prefix)/error.log notice;
        events { worker_connections 1024; }
        http {
            access_log off;
            client_body_temp_path \(prefix)/body;
            proxy_temp_path \(prefix)/proxy;
            fastcgi_temp_path \(prefix)/fastcgi;
            uwsgi_temp_path \(prefix)/uwsgi;
            scgi_temp_path \(prefix)/scgi;
            include \(file);
        }

        """
    }
}

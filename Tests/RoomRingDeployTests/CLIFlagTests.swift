import Foundation
import Testing

/// One `roomring <subcommand> ...` found in a file under `deploy/`.
struct Invocation: CustomStringConvertible {
    var place: String
    var words: [String]
    /// Marked as arriving later ("planned" or "arrives with" within 12 lines before it or 2 after).
    var planned: Bool

    var description: String { "\(place): roomring \(words.joined(separator: " "))" }
}

/// Finds `roomring` invocations in text (shell, systemd, Markdown, flow-style YAML) and in parsed YAML.
enum InvocationScanner {
    /// Top-level subcommands DESIGN.md names; anything else after the word `roomring` is prose.
    static let subcommands: Set<String> = ["up", "shard", "proxy", "ring", "chat", "bench"]

    static func scan(text: String, file: String) -> [Invocation] {
        let lines = text.components(separatedBy: "\n")
        var found: [Invocation] = []
        var index = 0
        while index < lines.count {
            let start = index
            var logical = lines[index]
            // Continuation lines (shell, systemd, Dockerfile RUN).
            while logical.hasSuffix("\\"), index + 1 < lines.count {
                logical = String(logical.dropLast()) + " " + lines[index + 1]
                index += 1
            }
            index += 1
            let context = lines[max(0, start - 12)...min(lines.count - 1, index + 1)].joined(separator: "\n").lowercased()
            let planned = context.contains("planned") || context.contains("arrives with")
            for words in invocations(in: logical) {
                found.append(Invocation(place: "\(file):\(start + 1)", words: words, planned: planned))
            }
        }
        return found
    }

    /// The words after each `roomring` on one logical line, up to the end of its command.
    static func invocations(in line: String) -> [[String]] {
        var result: [[String]] = []
        var rest = Substring(line)
        while let range = rest.range(of: "roomring") {
            let before = rest[..<range.lowerBound].last
            let after = rest[range.upperBound...]
            rest = after
            if let before, before.isLetter || before.isNumber || "-_.@$".contains(before) { continue }
            guard let first = after.first, first == " " || first == "\"" || first == "'" || first == "," else { continue }
            var command = after
            for terminator in ["`", "|", "&&", ";", " #", " roomring "] {
                if let end = command.range(of: terminator) { command = command[..<end.lowerBound] }
            }
            let separators: Set<Character> = ["\"", "'", ",", "[", "]", " ", "\t"]
            let words = command.split(whereSeparator: { separators.contains($0) }).map(String.init)
            if let sub = words.first, subcommands.contains(sub) { result.append(words) }
        }
        return result
    }

    /// `command` + `args` lists (Kubernetes containers, Compose services) whose program is `roomring`.
    static func scan(yaml node: Any, file: String) -> [Invocation] {
        var found: [Invocation] = []
        if let map = node as? [String: Any] {
            let command = words(map["command"]) + words(map["args"])
            if let at = command.firstIndex(where: { $0 == "roomring" || $0.hasSuffix("/roomring") }),
                at + 1 < command.count, subcommands.contains(command[at + 1])
            {
                found.append(Invocation(place: "\(file) (YAML)", words: Array(command[(at + 1)...]), planned: false))
            }
            for value in map.values { found += scan(yaml: value, file: file) }
        } else if let list = node as? [Any] {
            for value in list { found += scan(yaml: value, file: file) }
        }
        return found
    }

    private static func words(_ value: Any?) -> [String] {
        if let list = value as? [Any] { return list.map { "\($0)" } }
        if let string = value as? String { return string.split(separator: " ").map(String.init) }
        return []
    }
}

/// `roomring <path> --help`, parsed for the flags it lists.
actor HelpCache {
    let binary: URL
    private var cache: [String: Set<String>?] = [:]

    init(binary: URL) { self.binary = binary }

    /// The long flags of `roomring <path>`, or nil when the CLI has no such (sub)command.
    func flags(_ path: [String]) async throws -> Set<String>? {
        let key = path.joined(separator: " ")
        if let known = cache[key] { return known }
        let result = try await Tool.run(binary.path, path + ["--help"], timeout: .seconds(30))
        var flags: Set<String>?
        // ArgumentParser answers an unknown subcommand's --help with its parent's help: check the usage line.
        if result.status == 0, result.output.contains("USAGE: roomring \(key)") {
            let option = /^\s{2}(?:-[A-Za-z], )?(--[a-z0-9][a-z0-9-]*)/
            flags = Set(result.output.split(separator: "\n").compactMap { line in
                (try? option.firstMatch(in: String(line))).map { String($0.output.1) }
            })
        }
        cache[key] = flags
        return flags
    }
}

/// Checks invocations against a CLI: every flag must be one the (sub)command lists; a (sub)command the CLI does
/// not have is allowed only when the text marks it as planned.
enum FlagChecker {
    /// Subcommand groups: the word after them names one of their subcommands.
    static let groups: Set<String> = ["ring", "bench"]

    static func check(_ invocations: [Invocation], flags: ([String]) async throws -> Set<String>?) async rethrows
        -> (problems: [String], planned: Int)
    {
        var problems: [String] = []
        var planned = 0
        for invocation in invocations.flatMap(expandAlternatives) {
            var path = [invocation.words[0]]
            let next = invocation.words.count > 1 ? invocation.words[1] : nil
            if let next, !next.hasPrefix("-"), try await flags(path + [next]) != nil { path.append(next) }
            let known = try await flags(path)
            let subcommand = next.flatMap { $0.hasPrefix("-") ? nil : $0 }
            let missingSubcommand = path.count == 1 && groups.contains(path[0]) && subcommand != nil
            let command = "roomring " + (missingSubcommand ? path + [subcommand!] : path).joined(separator: " ")
            guard let known, !missingSubcommand else {
                if invocation.planned { planned += 1 } else {
                    problems.append("\(invocation): `\(command)` is not in the CLI "
                                    + "(documented ahead of its arrival? say it is planned)")
                }
                continue
            }
            for word in invocation.words.dropFirst(path.count) where word.hasPrefix("--") {
                let flag = String(word.prefix { $0 != "=" })
                if !known.contains(flag) { problems.append("\(invocation): \(flag) is not a flag of `\(command)`") }
            }
        }
        return (problems, planned)
    }

    /// `roomring ring add/drain` in prose names two subcommands.
    static func expandAlternatives(_ invocation: Invocation) -> [Invocation] {
        guard invocation.words.count > 1, groups.contains(invocation.words[0]), invocation.words[1].contains("/")
        else { return [invocation] }
        return invocation.words[1].split(separator: "/").map { alternative in
            var copy = invocation
            copy.words = [invocation.words[0], String(alternative)]
            return copy
        }
    }
}

@Suite struct CLIFlagTests {
    /// Every invocation in deploy/: text files line by line, YAML files also structurally.
    static func invocations() async throws -> (found: [Invocation], yamlChecked: Bool) {
        var found: [Invocation] = []
        let files = Deploy.files()
        for file in files {
            guard let text = try? String(contentsOf: Deploy.root.appendingPathComponent(file), encoding: .utf8)
            else { continue }
            found += InvocationScanner.scan(text: text, file: file)
        }
        let yamlFiles = files.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
        guard YAML.python != nil else {
            print("SKIP structural scan of \(yamlFiles.count) YAML files: no python3 with PyYAML (python3-yaml)")
            return (found, false)
        }
        let documents = try await YAML.load(yamlFiles.map { Deploy.root.appendingPathComponent($0).path })
        for file in yamlFiles {
            for document in documents[Deploy.root.appendingPathComponent(file).path] ?? [] {
                found += InvocationScanner.scan(yaml: document, file: file)
            }
        }
        return (found, true)
    }

    @Test func scannerFindsInvocationsInEveryForm() {
        let text = """
            ExecStart=/usr/local/bin/roomring shard --id %i \\
                --port ${SHARD_PORT}
            command: ["roomring", "proxy", "--ring", "/etc/roomring/ring.json"]
            roomring-shard@.service and roomring_shard_connections are not invocations; `roomring up --shards 5`
            """
        let found = InvocationScanner.scan(text: text, file: "x")
        #expect(found.map(\.words) == [["shard", "--id", "%i", "--port", "${SHARD_PORT}"],
                                       ["proxy", "--ring", "/etc/roomring/ring.json"], ["up", "--shards", "5"]])
        let yaml: [String: Any] = ["spec": ["containers": [["command": ["roomring", "shard"], "args": ["--id", "a"]]]]]
        #expect(InvocationScanner.scan(yaml: yaml, file: "y").map(\.words) == [["shard", "--id", "a"]])
    }

    @Test func checkerFlagsUnknownFlagsAndUnmarkedFutureCommands() async {
        let cli: [String: Set<String>] = ["shard": ["--id", "--port"], "bench": ["--help"], "bench ring": ["--help"]]
        func invocation(_ words: String, planned: Bool = false) -> Invocation {
            Invocation(place: "f:1", words: words.split(separator: " ").map(String.init), planned: planned)
        }
        let (problems, planned) = await FlagChecker.check([
            invocation("shard --id s1 --port=9001"),          // fine
            invocation("shard --id s1 --mode pubsub"),        // unknown flag
            invocation("ring add s4 x:1 --wait"),             // command not there, not marked
            invocation("ring drain s4 --wait", planned: true), // command not there, marked planned
            invocation("bench proxy --rooms 5"),              // group exists, subcommand does not
            invocation("bench ring"),                         // fine
            invocation("ring add/drain", planned: true),      // two planned commands
        ]) { cli[$0.joined(separator: " ")] }
        #expect(problems.count == 3, "\(problems)")
        #expect(problems.contains { $0.contains("--mode is not a flag of `roomring shard`") })
        #expect(problems.contains { $0.contains("`roomring ring add` is not in the CLI") })
        #expect(problems.contains { $0.contains("`roomring bench proxy` is not in the CLI") })
        #expect(planned == 3)
    }

    @Test func everyRoomRingFlagInDeployExists() async throws {
        guard let binary = RoomRingBinary.url else {
            print("SKIP flag check: roomring binary not found next to the tests (run `swift build --build-tests`)")
            return
        }
        let (found, yamlChecked) = try await Self.invocations()
        // The scan must see the shipped units, Compose services and Kubernetes workloads, or it proves nothing.
        let places = Set(found.map { $0.place.split(separator: ":")[0] })
        var expected = ["deploy/systemd/roomring-shard@.service", "deploy/systemd/roomring-proxy.service",
                        "deploy/README.md", "deploy/k8s/RUNBOOK.md"]
        if yamlChecked {
            expected += ["deploy/docker/compose.yaml (YAML)", "deploy/k8s/shards.yaml (YAML)",
                         "deploy/k8s/proxy.yaml (YAML)"]
        }
        for file in expected { #expect(places.contains(Substring(file)), "no roomring invocation found in \(file)") }

        let help = HelpCache(binary: binary)
        let (problems, plannedCount) = try await FlagChecker.check(found) { try await help.flags($0) }
        print("checked \(found.count) roomring invocations in deploy/ (\(plannedCount) of planned commands)")
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }
}

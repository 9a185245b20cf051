#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A child process started with `posix_spawn`, for `roomring up`'s shards, the Redis child and the tests.
///
/// Not Foundation's `Process`: on Linux its `run()` lists `/proc/self/fd` to find the highest descriptor, copying
/// each entry's whole 256-byte name field. With more than about 1,300 descriptors open the directory fills
/// `readdir`'s buffer, and when that buffer ends at a page boundary the copy of its last entry faults (the chaos
/// test's SIGSEGV, at a page-aligned address, while 2,000 clients were connected). Here the child closes everything
/// from fd 3 up itself (`posix_spawn_file_actions_addclosefrom_np`), and nothing lists descriptors at all.
///
/// The child starts with every signal unblocked and at its default action: it would otherwise inherit the
/// blocked signals of the spawning thread (NIO and Swift concurrency threads block most), and a server that
/// cannot receive SIGTERM cannot stop gracefully.
///
/// A thread per child waits for it, so ``isRunning`` and ``terminationStatus`` are accurate and the child is
/// never left a zombie.
public final class ChildProcess: Sendable {
    /// Where one of the child's standard streams goes.
    public enum Stream: Sendable {
        /// The parent's own stream.
        case inherit
        /// `/dev/null`.
        case null
        /// This descriptor of the parent (for example a pipe's write end).
        case descriptor(Int32)
    }

    public let processIdentifier: pid_t
    private let exit = Mutex<Int32?>(nil)

    /// Starts `executable` (an absolute path) with `arguments` (not including argv[0]).
    /// - Parameters:
    ///   - environment: the child's whole environment; nil inherits the parent's.
    ///   - onExit: called once, on the waiting thread, with ``terminationStatus``.
    /// - Throws: ``ChildProcessError`` when `posix_spawn` fails (no such file, not executable, …).
    public init(executable: String, arguments: [String], environment: [String: String]? = nil,
                stdin: Stream = .null, stdout: Stream = .inherit, stderr: Stream = .inherit,
                onExit: (@Sendable (Int32) -> Void)? = nil) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var files = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&files)
        defer { posix_spawn_file_actions_destroy(&files) }
        for (target, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .inherit: break
            case .null: posix_spawn_file_actions_addopen(&files, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .descriptor(let fd): posix_spawn_file_actions_adddup2(&files, fd, target)
            }
        }
        Self.closeFrom(3, in: &files)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp: [UnsafeMutablePointer<CChar>?] = (environment ?? [:]).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }

        var pid: pid_t = 0
        let result = envp.withUnsafeBufferPointer { ownEnvironment in
            posix_spawn(&pid, executable, &files, &attributes, argv,
                        environment == nil ? environ : UnsafeMutablePointer(mutating: ownEnvironment.baseAddress!))
        }
        guard result == 0 else {
            throw ChildProcessError(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        processIdentifier = pid
        guard Self.waitInBackground(for: self, onExit: onExit) else {
            // Without a waiting thread the child could never be reaped or observed: do not leave it running.
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw ChildProcessError(description: "cannot start a thread to wait for \(executable)")
        }
    }

    /// A pipe whose two ends are close-on-exec (a child gets one only through a ``Stream/descriptor(_:)``).
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [0, 0]
        guard Glibc.pipe(&ends) == 0 else {
            throw ChildProcessError(description: "pipe: \(String(cString: strerror(errno)))")
        }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return (ends[0], ends[1])
    }

    /// Whether the child has not exited yet.
    public var isRunning: Bool { exit.withLock { $0 == nil } }

    /// The exit code, or the number of the signal that ended it; nil while it runs.
    public var terminationStatus: Int32? { exit.withLock { $0 } }

    /// Sends `signal` if the child is still running (never to a reaped pid that may have been reused).
    public func signal(_ signal: Int32) {
        exit.withLock { status in
            if status == nil { _ = kill(processIdentifier, signal) }
        }
    }

    /// Waits up to `timeout` for the child to exit; returns ``terminationStatus``.
    @discardableResult
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return terminationStatus
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`; returns the status (nil if even SIGKILL did not
    /// end it within a second).
    @discardableResult
    public func terminate(grace: Duration = .seconds(10)) async -> Int32? {
        signal(SIGTERM)
        if let status = await waitForExit(timeout: grace) { return status }
        signal(SIGKILL)
        return await waitForExit(timeout: .seconds(1))
    }

    /// Blocks the calling thread until the child has exited (for synchronous shutdown paths).
    public func waitUntilExit() {
        while isRunning { usleep(5_000) }
    }

    private static func waitInBackground(for child: ChildProcess, onExit: (@Sendable (Int32) -> Void)?) -> Bool {
        let pid = child.processIdentifier
        let work = WaitWork(pid: pid) { status in
            // The status is recorded under the same lock `signal` takes: once it is set nobody signals the pid.
            child.exit.withLock { $0 = status }
            onExit?(status)
        }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(work).toOpaque()
        let created = pthread_create(&thread, nil, { argument in
            let work = Unmanaged<WaitWork>.fromOpaque(argument!).takeRetainedValue()
            work.run()
            return nil
        }, box)
        guard created == 0 else {
            Unmanaged<WaitWork>.fromOpaque(box).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+), looked up at run time: Swift's Glibc module leaves
    /// out the GNU extensions. Without it (older systems) the child closes nothing extra.
    private static func closeFrom(_ lowest: Int32, in files: inout posix_spawn_file_actions_t) {
        #if os(Linux)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        else { return }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&files, lowest)
        #endif
    }
}

/// What the waiting thread runs: a blocking `waitpid` for one child.
private final class WaitWork: Sendable {
    let pid: pid_t
    let done: @Sendable (Int32) -> Void

    init(pid: pid_t, done: @escaping @Sendable (Int32) -> Void) {
        self.pid = pid
        self.done = done
    }

    func run() {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, 0)
            if result == pid { break }
            if result < 0, errno == EINTR { continue }
            done(-1)  // ECHILD: someone else reaped it; the status is unknown
            return
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as functions.
        let signal = status & 0x7f
        done(signal == 0 ? (status >> 8) & 0xff : signal)
    }
}

/// Why a child process could not be started.
public struct ChildProcessError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

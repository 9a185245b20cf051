import NIOCore
import NIOHTTP1
import RoomRingHTTP

/// The browser files the shard serves next to the chat page: the page itself and the `roomring.js` module it
/// imports (DESIGN.md §4). Both come through the proxy, which routes paths without a room to any healthy shard.
extension WebAssets {
    static let roomringJS: [UInt8] = load("roomring.js")

    /// The static file at `path` (`/`, `/index.html`, `/roomring.js`), or a 404.
    static func response(for path: Substring) -> HTTPResponse {
        let (bytes, type): ([UInt8], String) = switch path {
        case "/", "/index.html": (index, "text/html; charset=utf-8")
        case "/roomring.js": (roomringJS, "text/javascript; charset=utf-8")
        default: ([], "")
        }
        guard !type.isEmpty else { return .error(.notFound, code: "not_found", "no such file: \(path)") }
        var response = HTTPResponse(.ok, body: ByteBuffer(bytes: bytes), contentType: type)
        // Shards of one fleet may run different builds during a rolling upgrade: revalidate instead of caching
        // a page and a module that do not match.
        response.headers.replaceOrAdd(name: "Cache-Control", value: "no-cache")
        return response
    }
}

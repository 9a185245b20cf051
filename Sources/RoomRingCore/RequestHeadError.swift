/// Why a request head was rejected, with the HTTP status to answer.
public struct RequestHeadError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Every rejection reason; `code` gives a stable string for logs and metrics.
    public enum Reason: String, Hashable, Sendable, CaseIterable {
        /// The first bytes cannot start an HTTP request (TLS, binary, a protocol we do not speak).
        case notHTTP = "not_http"
        case tooLarge = "too_large"
        case tooManyHeaders = "too_many_headers"
        case badMethod = "bad_method"
        case badTarget = "bad_target"
        case badVersion = "bad_version"
        case bareLF = "bare_lf"
        case nulByte = "nul_byte"
        case obsoleteLineFolding = "obsolete_line_folding"
        case badHeaderName = "bad_header_name"
        case badHeaderValue = "bad_header_value"
        case missingHost = "missing_host"
        case conflictingLength = "conflicting_length"
        case badContentLength = "bad_content_length"
        case missingRoom = "missing_room"
        case invalidRoom = "invalid_room"
    }

    /// What was wrong.
    public let reason: Reason

    /// - Parameters:
    ///   - reason: what was wrong.
    public init(_ reason: Reason) { self.reason = reason }

    /// The status a server or proxy answers with.
    public var status: Int {
        switch reason {
        case .tooLarge, .tooManyHeaders: 431
        case .badVersion: 505
        default: 400
        }
    }

    /// Whether the peer should get no HTTP answer at all (it is not speaking HTTP).
    public var closeWithoutResponse: Bool { reason == .notHTTP }

    public var description: String {
        switch reason {
        case .notHTTP: "the connection does not start with an HTTP request"
        case .tooLarge: "request head is larger than the limit"
        case .tooManyHeaders: "request has more header fields than the limit"
        case .badMethod: "request method is not an HTTP token of upper-case letters"
        case .badTarget: "request target must start with / and contain only visible ASCII"
        case .badVersion: "only HTTP/1.0 and HTTP/1.1 are supported"
        case .bareLF: "line ends must be CRLF"
        case .nulByte: "NUL byte in the request head"
        case .obsoleteLineFolding: "obsolete header line folding is not accepted"
        case .badHeaderName: "malformed header field name"
        case .badHeaderValue: "control character in a header value"
        case .missingHost: "HTTP/1.1 request without Host"
        case .conflictingLength: "request has both Content-Length and Transfer-Encoding, or differing Content-Lengths"
        case .badContentLength: "Content-Length is not a decimal number"
        case .missingRoom: "path /rooms/ names no room"
        case .invalidRoom: "room id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"
        }
    }
}

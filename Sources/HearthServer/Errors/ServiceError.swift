import HearthCore
import HearthStorage
import Hummingbird
import Logging
import NIOCore

/// Why a request was refused or failed, whatever the transport. Every error a request can end
/// with becomes one of these (``ServiceError/init(_:)``); each transport turns it into its own
/// wire form in one place: HTTP statuses and Firebase's `{"error": ...}` bodies in
/// `ServiceError+HTTP.swift`.
public struct ServiceError: Error, Sendable, CustomStringConvertible {
    /// The kinds of failure, named for what happened rather than for a status code.
    public enum Code: Sendable, Equatable {
        /// The request, its parameters or its data are not acceptable (HTTP 400).
        case invalidRequest
        /// A credential that cannot be verified (401).
        case unauthenticated
        /// The security rules refused (401, `Permission denied`).
        case permissionDenied
        /// No such endpoint or database (404).
        case notFound
        /// The endpoint does not take this method (405).
        case methodNotAllowed
        /// A conditional write whose condition no longer holds, for a caller who may not read
        /// the current value (412; callers who may read get it as the answer instead).
        case conditionFailed
        /// A body or record over a size limit (413).
        case tooLarge
        /// A body in an encoding Hearth cannot read (415).
        case unsupportedEncoding
        /// Over a rate limit; try again after this many seconds (429).
        case tooManyRequests(retryAfterSeconds: Int?)
        /// A bug or an unexpected failure; the details are in the server's log (500).
        case internalError
        /// The server cannot serve this now: storage failing, shutting down (503).
        case unavailable
        /// The disk is full; nothing was written (507).
        case insufficientStorage
        /// An error the HTTP stack itself raised, kept with its status.
        case http(status: Int)
    }

    public let code: Code
    /// The text clients see.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func methodNotAllowed(_ method: String) -> ServiceError {
        ServiceError(.methodNotAllowed, "Method \(method) is not allowed here.")
    }

    /// Firebase's answer to a read or write the rules refuse; the reason goes to the log only.
    static let permissionDenied = ServiceError(.permissionDenied, "Permission denied")
}

extension ServiceError {
    /// Any error a request ended with, as a ``ServiceError``: the errors of the core, of
    /// storage and of the HTTP stack each map to one code here, and nowhere else. `log` hears
    /// what an operator should know (at the level given), never what the client is told.
    init(_ error: any Error, log: (_ level: Logger.Level, _ message: String) -> Void = { _, _ in }) {
        switch error {
        case let error as ServiceError:
            self = error
        case let error as DataError:
            self.init(.invalidRequest, error.message)
        case let error as PermissionDenied:
            log(.debug, "permission denied: \(error.reason)")
            self = .permissionDenied
        case is BodyEndedEarly:
            log(.debug, "request body ended early")
            self.init(.invalidRequest, "Bad request: the request body ended early.")
        case let error as RecordTooLarge:
            self.init(.tooLarge, "Payload too large: \(error).")
        case let error as StorageUnavailable:
            log(.error, "write failed in storage: \(error.reason)")
            self.init(
                error.outOfSpace ? .insufficientStorage : .unavailable,
                (error.outOfSpace ? "Insufficient storage: " : "Service unavailable: ") + error.reason)
        case let error as RecoveryError:
            log(.error, "namespace cannot be opened: \(error)")
            self.init(.unavailable, "Service unavailable: this database cannot be opened; see the server log.")
        case is CancellationError:
            log(.notice, "request cancelled: the server is shutting down")
            self.init(.unavailable, "Service unavailable: the server is shutting down.")
        case let error as HTTPError:
            self.init(.http(status: error.status.code), error.body ?? error.status.reasonPhrase)
        default:
            log(.error, "unexpected error: \(error)")
            self.init(.internalError, "Internal server error; see the server log.")
        }
    }
}

/// Storage could not take a write (disk full, I/O error). The write did not happen.
public struct StorageUnavailable: Error, Sendable {
    public let reason: String
    /// The disk is full (507) rather than failing otherwise (503).
    public let outOfSpace: Bool

    public init(reason: String, outOfSpace: Bool = false) {
        self.reason = reason
        self.outOfSpace = outOfSpace
    }
}

/// The request body stopped arriving before its end; answered 400 (which the client, gone or
/// cut off, normally never reads) and logged at debug only.
struct BodyEndedEarly: Error {}

import HearthCore

extension ServiceError {
    /// The status of a realtime reply for this error (the SDKs know `permission_denied`,
    /// `datastale`, `too_big`, `unavailable`, `expired_token`, `invalid_token`; any other
    /// status reaches the app's callback as its upper-cased text with the message).
    var realtimeStatus: String {
        switch code {
        case .invalidRequest, .unsupportedEncoding, .methodNotAllowed, .http: "invalid_data"
        case .unauthenticated: "invalid_token"
        case .permissionDenied: "permission_denied"
        case .notFound: "not_found"
        case .conditionFailed: "datastale"
        case .tooLarge: "too_big"
        case .tooManyRequests: "too_many_requests"
        case .internalError: "internal_error"
        case .unavailable, .insufficientStorage: "unavailable"
        }
    }
}

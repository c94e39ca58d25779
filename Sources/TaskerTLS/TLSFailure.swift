import NIOSSL

/// What a failed TLS handshake means, in words a person can act on.
enum TLSFailure {
    static func describe(_ error: any Error, server: String) -> String? {
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
            return "the TLS certificate of \(server) is not for that name (\(error)); connect by a name the certificate carries, or give that name as the TLS server name"
        }
        if let error = error as? TLSSetupError { return error.description }
        let detail: String
        switch error {
        case NIOSSLError.handshakeFailed(let failure): detail = "\(failure)"
        // Under TLS 1.3 the server judges the client's certificate after the client's side of
        // the handshake is done: its alert comes with the first read.
        case let failure as BoringSSLError: detail = "\(failure)"
        case NIOSSLError.uncleanShutdown: return "\(server) closed the connection during the TLS handshake"
        case let failure as NIOSSLError: return "TLS with \(server) failed: \(failure)"
        default: return nil
        }
        if detail.contains("CERTIFICATE_VERIFY_FAILED") {
            return "the TLS certificate of \(server) is not trusted: it is not signed by a CA this client trusts (the system's, or the --tls-ca file), or it has expired or is not yet valid"
        }
        if detail.contains("ALERT_CERTIFICATE_REQUIRED") || detail.contains("ALERT_HANDSHAKE_FAILURE") {
            return "\(server) refused the TLS handshake: it requires a client certificate signed by its client CA (--tls-cert and --tls-key)"
        }
        if detail.contains("ALERT_UNKNOWN_CA") || detail.contains("ALERT_BAD_CERTIFICATE") {
            return "\(server) refused this client's TLS certificate: it is not signed by the server's client CA"
        }
        if detail.contains("ALERT_CERTIFICATE_EXPIRED") {
            return "\(server) refused this client's TLS certificate: it has expired"
        }
        if detail.contains("WRONG_VERSION_NUMBER") || detail.contains("PACKET_LENGTH_TOO_LONG") {
            return "\(server) did not answer in TLS: is it serving plaintext (connect without TLS)?"
        }
        return "the TLS handshake with \(server) failed: \(detail)"
    }
}

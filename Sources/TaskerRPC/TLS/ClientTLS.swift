import NIOCore
import NIOSSL

/// TLS for a client: whom it trusts, and for mutual TLS the certificate it presents.
public struct ClientTLS: Sendable {
    /// PEM file of the CAs to trust in place of the system's roots.
    public var caPath: String?
    /// The client's certificate and key, for a server that requires one.
    public var certificatePath: String?
    public var keyPath: String?
    /// The name the server's certificate must carry, when it is not the host connected to.
    public var serverName: String?

    public init(caPath: String? = nil, certificatePath: String? = nil, keyPath: String? = nil, serverName: String? = nil) {
        self.caPath = caPath
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.serverName = serverName
    }

    func makeContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["h2"]
        if let caPath {
            configuration.trustRoots = .certificates(try TLSFile.certificates(caPath, "CA"))
        }
        switch (certificatePath, keyPath) {
        case (let certificate?, let key?):
            configuration.certificateChain = try TLSFile.certificates(certificate, "certificate").map { .certificate($0) }
            configuration.privateKey = .privateKey(try TLSFile.privateKey(key))
        case (nil, nil):
            break
        default:
            throw TLSSetupError("a client certificate needs its key and a key its certificate: give both --tls-cert and --tls-key")
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError("the client's TLS key does not belong to its certificate, or cannot be used with it (\(error))")
        }
    }

    /// The name sent as SNI and checked against the server's certificate; an IP address is
    /// not sent (SNI carries names only) and is checked against the certificate's IP entries.
    func verifiedName(host: String) -> String? {
        let name = serverName ?? host
        let isAddress = (try? SocketAddress(ipAddress: name, port: 0)) != nil
        return isAddress ? nil : name
    }
}

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

import NIOSSL

/// The certificate a server presents, read from PEM files, and for mutual TLS the CA that must
/// have signed every client's certificate. ALPN offers `h2` alone: gRPC is HTTP/2.
public struct ServerTLS: Sendable {
    /// The server's certificate, then any intermediates, in PEM.
    public var certificatePath: String
    public var keyPath: String
    /// With a CA, a client without a certificate it signed is refused at the handshake.
    public var clientCAPath: String?

    public init(certificatePath: String, keyPath: String, clientCAPath: String? = nil) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
    }

    /// Reads the files anew: the context for the connections accepted from now on.
    func makeContext() throws -> NIOSSLContext {
        let chain = try TLSFile.certificates(certificatePath, "certificate")
        let key = try TLSFile.privateKey(keyPath)
        var configuration: TLSConfiguration
        if let clientCAPath {
            configuration = .makeServerConfigurationWithMTLS(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key),
                trustRoots: .certificates(try TLSFile.certificates(clientCAPath, "client CA")))
        } else {
            configuration = .makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        }
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["h2"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError("the TLS key \(keyPath) does not belong to the certificate \(certificatePath), or cannot be used with it (\(error))")
        }
    }
}

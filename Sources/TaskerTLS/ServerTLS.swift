import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import TaskerRPC

/// TLS on a server's connections: the certificate it presents, read from PEM files, and for
/// mutual TLS the CA that must have signed every client's certificate. ALPN offers `h2`
/// alone for gRPC, or what `applicationProtocols` says (`http/1.1` on the HTTP port).
public final class ServerTLS: ServerConnectionSecurity {
    /// The server's certificate, then any intermediates, in PEM.
    public let certificatePath: String
    public let keyPath: String
    /// With a CA, a client without a certificate it signed is refused at the handshake.
    public let clientCAPath: String?
    /// A connection whose handshake has not ended by then is closed: a client that starts
    /// one and goes quiet holds no socket for long.
    public let handshakeTimeout: TimeAmount
    public let applicationProtocols: [String]
    private let context: NIOLockedValueBox<NIOSSLContext>

    /// Reads the files; one that cannot be used throws `TLSSetupError`, naming it.
    public init(
        certificatePath: String, keyPath: String, clientCAPath: String? = nil, handshakeTimeout: TimeAmount = .seconds(10),
        applicationProtocols: [String] = ["h2"]
    ) throws {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
        self.handshakeTimeout = handshakeTimeout
        self.applicationProtocols = applicationProtocols
        context = NIOLockedValueBox(try Self.makeContext(certificatePath, keyPath, clientCAPath, applicationProtocols))
    }

    /// The same files, offering other protocols by ALPN: the HTTP port's TLS beside the RPC port's.
    public func offering(_ protocols: [String]) throws -> ServerTLS {
        try ServerTLS(
            certificatePath: certificatePath, keyPath: keyPath, clientCAPath: clientCAPath, handshakeTimeout: handshakeTimeout,
            applicationProtocols: protocols)
    }

    /// Reads the files again (a renewed certificate): connections accepted from now on use
    /// them, open ones keep theirs. Files that cannot be used throw, and the ones in use stay.
    public func reload() throws {
        let renewed = try Self.makeContext(certificatePath, keyPath, clientCAPath, applicationProtocols)
        context.withLockedValue { $0 = renewed }
    }

    public func secure(_ channel: any Channel) throws {
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(NIOSSLServerHandler(context: context.withLockedValue { $0 }))
        try pipeline.addHandler(HandshakeWatcher.limiting(channel, to: handshakeTimeout))
    }

    private static func makeContext(
        _ certificatePath: String, _ keyPath: String, _ clientCAPath: String?, _ applicationProtocols: [String]
    ) throws -> NIOSSLContext {
        let chain = try TLSFile.certificates(certificatePath, "certificate").map { NIOSSLCertificateSource.certificate($0) }
        let key = try TLSFile.privateKey(keyPath)
        var configuration: TLSConfiguration
        if let clientCAPath {
            configuration = .makeServerConfigurationWithMTLS(
                certificateChain: chain, privateKey: .privateKey(key),
                trustRoots: .certificates(try TLSFile.certificates(clientCAPath, "client CA")))
        } else {
            configuration = .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        }
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = applicationProtocols
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError("the TLS key \(keyPath) does not belong to the certificate \(certificatePath), or cannot be used with it (\(error))")
        }
    }
}

import NIOCore
import NIOSSL
import TaskerRPC

/// TLS for a client: whom it trusts, and for mutual TLS the certificate it presents. The
/// files are read for each connection made, so a file that cannot be used fails the call
/// that needed it, saying why.
public struct ClientTLS: ClientConnectionSecurity {
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

    public func secure(_ channel: any Channel, host: String, authority: String) throws -> EventLoopFuture<Void> {
        let tls = try NIOSSLClientHandler(context: try makeContext(), serverHostname: verifiedName(host: host))
        let secured = channel.eventLoop.makePromise(of: Void.self)
        do {
            try channel.pipeline.syncOperations.addHandlers([tls, HandshakeWatcher(done: secured, server: authority)])
        } catch {
            secured.fail(error)
            throw error
        }
        return secured.futureResult
    }

    public func describe(_ error: any Error, server: String) -> String? {
        TLSFailure.describe(error, server: server)
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

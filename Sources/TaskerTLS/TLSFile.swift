import Foundation
import NIOSSL

/// A TLS setting that cannot be used: a file missing or not what it should be. The message
/// names the file and what was wrong, for the person who gave it.
public struct TLSSetupError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// PEM files read for TLS, each failure named.
enum TLSFile {
    static func certificates(_ path: String, _ what: String) throws -> [NIOSSLCertificate] {
        let bytes = try read(path, what)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw TLSSetupError("the TLS \(what) \(path) is not a PEM certificate")
        }
        guard !certificates.isEmpty else { throw TLSSetupError("the TLS \(what) \(path) holds no PEM certificate") }
        return certificates
    }

    static func privateKey(_ path: String) throws -> NIOSSLPrivateKey {
        let bytes = try read(path, "key")
        do {
            return try NIOSSLPrivateKey(bytes: bytes, format: .pem)
        } catch {
            throw TLSSetupError("the TLS key \(path) is not an unencrypted PEM private key")
        }
    }

    private static func read(_ path: String, _ what: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "it cannot be read" : "there is no such file"
            throw TLSSetupError("cannot use the TLS \(what) \(path): \(reason)")
        }
        return Array(data)
    }
}

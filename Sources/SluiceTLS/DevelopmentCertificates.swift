import Crypto
import Foundation
import SwiftASN1
import X509

/// `sluice certs init`: a development CA and, signed by it, a certificate for the coordinator and
/// one per worker. A certificate's common name is the identity the coordinator binds a worker to.
/// Keys are P-256, written with mode 0600. For production use certificates from your own CA (for
/// example cert-manager); the files have the same shape.
public enum DevelopmentCertificates {
    public struct Paths: Sendable {
        public var certificate: String
        public var key: String
    }

    public static func caPath(_ dir: String) -> String { (dir as NSString).appendingPathComponent("ca.pem") }

    public static func paths(_ dir: String, identity: String) -> Paths {
        Paths(certificate: (dir as NSString).appendingPathComponent("\(identity).pem"),
              key: (dir as NSString).appendingPathComponent("\(identity)-key.pem"))
    }

    /// Writes `ca.pem`, `ca-key.pem`, `coordinator.pem`/`-key.pem` and `worker-1` … `worker-N`.
    /// Returns the identities written.
    @discardableResult
    public static func initialize(directory: String, workers: Int, validDays: Int = 365,
                                  extraIdentities: [String] = []) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName {
            OrganizationName("Sluice")
            CommonName("Sluice development CA")
        }
        let now = Date()
        let notAfter = now.addingTimeInterval(Double(validDays) * 86_400)
        let ca = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3_600), notValidAfter: notAfter,
            issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(caKey))
        try write(try ca.serializeAsPEM().pemString, to: caPath(directory), private: false)
        try write(caKey.pemRepresentation, to: (directory as NSString).appendingPathComponent("ca-key.pem"), private: true)

        let identities = ["coordinator"] + (0..<workers).map { "worker-\($0 + 1)" } + extraIdentities
        for identity in identities {
            let key = P256.Signing.PrivateKey()
            let subject = try DistinguishedName {
                OrganizationName("Sluice")
                CommonName(identity)
            }
            let leaf = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
                notValidBefore: now.addingTimeInterval(-3_600), notValidAfter: notAfter,
                issuer: caName, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames([.dnsName("localhost"), .dnsName(identity),
                                             .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
                },
                issuerPrivateKey: .init(caKey))
            let paths = paths(directory, identity: identity)
            try write(try leaf.serializeAsPEM().pemString, to: paths.certificate, private: false)
            try write(key.pemRepresentation, to: paths.key, private: true)
        }
        return identities
    }

    /// The identity a certificate speaks for: its subject's common name.
    public static func identity(of certificate: Certificate) -> String? {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return attribute.value.description
            }
        }
        return nil
    }

    /// The identity in a PEM certificate file.
    public static func identity(certificateFile path: String) throws -> String {
        let pem = try String(contentsOfFile: path, encoding: .utf8)
        // A chain file holds the leaf first.
        guard let leaf = try PEMDocument.parseMultiple(pemString: pem).first else {
            throw TLSConfigurationError("no certificate in '\(path)'")
        }
        let certificate = try Certificate(pemDocument: leaf)
        guard let id = identity(of: certificate) else {
            throw TLSConfigurationError("certificate '\(path)' has no common name to use as the identity")
        }
        return id
    }

    private static func write(_ text: String, to path: String, private isPrivate: Bool) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8),
                                             attributes: [.posixPermissions: isPrivate ? 0o600 : 0o644]) else {
            throw TLSConfigurationError("cannot write '\(path)'")
        }
    }
}

public struct TLSConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

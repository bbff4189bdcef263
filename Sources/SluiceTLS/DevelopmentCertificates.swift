import Crypto
import Foundation
import SwiftASN1
import X509

/// `sluice certs init`: a development CA and, signed by it, a certificate for the coordinator, one
/// per worker and one for the operator. Each leaf carries its identity as a SAN URI
/// `spiffe://sluice/<role>/<name>` (see `ClusterIdentity`). Only the coordinator's has DNS/IP
/// names (localhost, coordinator, 127.0.0.1) and server-auth usage; worker and operator leaves are
/// client-auth only with no DNS/IP names, so none of them can pass as the coordinator. Keys are
/// P-256, written with mode 0600. For production use certificates from your own CA (for example
/// cert-manager, k8s/README.md); they need the same shape.
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

    /// Writes `ca.pem`, `ca-key.pem`, `coordinator.pem`/`-key.pem`, `worker-1` … `worker-N` and
    /// an operator certificate per name in `extraIdentities`. Returns the names written.
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

        let identities = [ClusterIdentity(role: .coordinator, name: "coordinator")]
            + (0..<workers).map { ClusterIdentity(role: .worker, name: "worker-\($0 + 1)") }
            + extraIdentities.map { ClusterIdentity(role: .operator, name: $0) }
        for identity in identities {
            let key = P256.Signing.PrivateKey()
            let leaf = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
                notValidBefore: now.addingTimeInterval(-3_600), notValidAfter: notAfter,
                issuer: caName, subject: try subject(identity), signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try leafExtensions(identity), issuerPrivateKey: .init(caKey))
            let paths = paths(directory, identity: identity.name)
            try write(try leaf.serializeAsPEM().pemString, to: paths.certificate, private: false)
            try write(key.pemRepresentation, to: paths.key, private: true)
        }
        return identities.map(\.name)
    }

    static func subject(_ identity: ClusterIdentity) throws -> DistinguishedName {
        try DistinguishedName {
            OrganizationName("Sluice")
            CommonName(identity.name)
        }
    }

    /// The shape every Sluice leaf needs: its identity URI and its role's key usage; DNS/IP names
    /// on the coordinator's alone.
    static func leafExtensions(_ identity: ClusterIdentity) throws -> Certificate.Extensions {
        var names: [GeneralName] = [.uniformResourceIdentifier(identity.uri)]
        if identity.role == .coordinator {
            names += [.dnsName("localhost"), .dnsName("coordinator"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]
        }
        return try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([identity.role.usage])
            SubjectAlternativeNames(names)
        }
    }

    /// The worker identity in a PEM certificate file (a chain file's leaf), checked for the role.
    public static func workerIdentity(certificateFile path: String) throws -> String {
        let leaf = try TLSFiles.certificates(in: path, what: "certificate (--cert or --certs DIR)")[0]
        do {
            return try ClusterIdentity.require(.worker, of: leaf).name
        } catch let error as TLSConfigurationError {
            throw TLSConfigurationError("certificate (--cert) '\(path)': \(error.description)")
        }
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

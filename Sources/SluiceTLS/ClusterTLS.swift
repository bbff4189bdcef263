import Foundation
import GRPCNIOTransportHTTP2
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// Where a process finds its certificate, key and the CA it trusts.
public struct TLSFiles: Sendable, Equatable {
    public var certificate: String
    public var key: String
    public var ca: String

    public init(certificate: String, key: String, ca: String) {
        self.certificate = certificate
        self.key = key
        self.ca = ca
    }

    /// The files `sluice certs init` wrote for `identity` in `directory`.
    public init(directory: String, identity: String) {
        let paths = DevelopmentCertificates.paths(directory, identity: identity)
        self.init(certificate: paths.certificate, key: paths.key, ca: DevelopmentCertificates.caPath(directory))
    }

    /// Checks the files at start, so that what no retry can cure fails at once with the file and
    /// the fix: each file is readable PEM, the key is the certificate's, the certificate is valid
    /// now and carries a `role` identity with the role's key usage. Returns that identity.
    @discardableResult
    public func validate(as role: ClusterIdentity.Role, now: Date = Date()) throws -> ClusterIdentity {
        let leaf = try Self.certificates(in: certificate, what: "certificate (--cert or --certs DIR)")[0]
        let privateKey: Certificate.PrivateKey
        do {
            privateKey = try Certificate.PrivateKey(pemEncoded: Self.read(key, what: "private key (--key or --certs DIR)"))
        } catch let error as TLSConfigurationError {
            throw error
        } catch {
            throw TLSConfigurationError("the private key (--key) '\(key)' is not a PEM private key (\(error)); pass the key file written with the certificate")
        }
        guard privateKey.publicKey == leaf.publicKey else {
            throw TLSConfigurationError("the private key (--key) '\(key)' does not belong to the certificate (--cert) '\(certificate)'; pass the key that was issued with that certificate")
        }
        guard now >= leaf.notValidBefore else {
            throw TLSConfigurationError("the certificate (--cert) '\(certificate)' is not valid before \(leaf.notValidBefore) (it is now \(now)); check the clock, or issue a certificate valid now")
        }
        guard now <= leaf.notValidAfter else {
            throw TLSConfigurationError("the certificate (--cert) '\(certificate)' expired on \(leaf.notValidAfter); renew it (`sluice certs init --dir DIR`, or your issuer, e.g. cert-manager)")
        }
        _ = try Self.certificates(in: ca, what: "CA certificate (--ca or --certs DIR)")
        do {
            return try ClusterIdentity.require(role, of: leaf)
        } catch let error as TLSConfigurationError {
            throw TLSConfigurationError("certificate (--cert) '\(certificate)': \(error.description)")
        }
    }

    /// The coordinator: TLS 1.3, a client certificate from our CA required. Which role may make
    /// which call is checked per call (`ClusterIdentity` of the peer's leaf).
    public func server() throws -> HTTP2ServerTransport.Posix.TransportSecurity {
        _ = try Self.certificates(in: certificate, what: "certificate (--cert or --certs DIR)")
        _ = try Self.certificates(in: ca, what: "CA certificate (--ca or --certs DIR)")
        return .mTLS(certificateChain: [.file(path: certificate, format: .pem)], privateKey: .file(path: key, format: .pem)) { config in
            config.trustRoots = .certificates([.file(path: ca, format: .pem)])
            config.clientCertificateVerification = .noHostnameVerification
        }
    }

    /// A worker or `sluice status` dialling `serverHost`: presents its certificate and accepts only
    /// a coordinator: a chain to our CA, valid now, for `serverHost` (DNS or IP SAN), with the
    /// coordinator role and server-auth usage. `onRefusal` hears why a server was refused.
    public func client(serverHost: String, onRefusal: @escaping @Sendable (String) -> Void = { _ in })
        throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        _ = try Self.certificates(in: certificate, what: "certificate (--cert or --certs DIR)")
        let roots = try Self.certificates(in: ca, what: "CA certificate (--ca or --certs DIR)")
        return .mTLS(certificateChain: [.file(path: certificate, format: .pem)], privateKey: .file(path: key, format: .pem)) { config in
            config.trustRoots = .certificates([.file(path: ca, format: .pem)])
            config.serverCertificateVerification = .fullVerification
            // Replaces BoringSSL's check, so it does the whole of it: chain, time, name and role.
            config.customVerificationCallback = { presented, promise in
                promise.completeWithTask {
                    await CoordinatorVerifier(roots: roots, host: serverHost).verify(presented, onRefusal: onRefusal)
                }
            }
        }
    }

    /// The file's bytes as text, or an error naming the file and the fix (not a Foundation dump).
    static func read(_ path: String, what: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TLSConfigurationError("the \(what) '\(path)' does not exist; create development certificates with `sluice certs init --dir DIR --workers N` (worker-1 … worker-N, coordinator, operator) and pass --certs DIR, or pass the files with --cert, --key and --ca")
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8) else {
            throw TLSConfigurationError("cannot read the \(what) '\(path)' (a directory, not readable by this user, or not text); pass a readable PEM file")
        }
        return text
    }

    /// The certificates of a PEM file (a chain file holds the leaf first); at least one.
    static func certificates(in path: String, what: String) throws -> [Certificate] {
        let text = try read(path, what: what)
        let certificates: [Certificate]
        do {
            certificates = try PEMDocument.parseMultiple(pemString: text)
                .filter { $0.discriminator == "CERTIFICATE" }
                .map { try Certificate(pemDocument: $0) }
        } catch {
            throw TLSConfigurationError("the \(what) '\(path)' is not a valid PEM certificate (\(error)); pass the certificate file itself")
        }
        guard !certificates.isEmpty else {
            throw TLSConfigurationError("the \(what) '\(path)' holds no PEM certificate (BEGIN CERTIFICATE); pass the certificate file itself")
        }
        return certificates
    }
}

/// The client's check of the coordinator's certificate chain.
struct CoordinatorVerifier: Sendable {
    let roots: [Certificate]
    let host: String

    func verify(_ presented: [NIOSSLCertificate], onRefusal: @Sendable (String) -> Void) async -> NIOSSLVerificationResultWithMetadata {
        let chain: [Certificate]
        do {
            chain = try presented.map { try Certificate(derEncoded: $0.toDERBytes()) }
        } catch {
            onRefusal("the server's certificate does not parse (\(error))")
            return .failed
        }
        guard let leaf = chain.first else {
            onRefusal("the server presented no certificate")
            return .failed
        }
        let isIP = HostLiteral.isIP(host)
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy(validationTime: Date())
            ServerIdentityPolicy(serverHostname: isIP ? nil : host, serverIP: isIP ? host : nil)
            RolePolicy(role: .coordinator)
        }
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst())) {
        case .validCertificate(let validated):
            do {
                let nio = try validated.map { certificate in
                    var serializer = DER.Serializer()
                    try serializer.serialize(certificate)
                    return try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
                }
                return .certificateVerified(VerificationMetadata(NIOSSL.ValidatedCertificateChain(nio)))
            } catch {
                onRefusal("cannot re-encode the server's chain (\(error))")
                return .failed
            }
        case .couldNotValidate(let failures):
            let reasons = Set(failures.map { $0.policyFailureReason.description })
            let reason = reasons.isEmpty ? "its certificate does not chain to our CA (--ca)" : reasons.sorted().joined(separator: "; ")
            onRefusal("not the cluster's coordinator for '\(host)' (\(ClusterIdentity.describe(leaf))): \(reason)")
            return .failed
        }
    }
}

/// The leaf must be a coordinator with server-auth usage.
struct RolePolicy: VerifierPolicy {
    let role: ClusterIdentity.Role
    var verifyingCriticalExtensions: [ASN1ObjectIdentifier] { [] }

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        do {
            _ = try ClusterIdentity.require(role, of: chain.leaf)
            return .meetsPolicy
        } catch {
            return .failsToMeetPolicy(reason: "\(error)")
        }
    }
}

enum HostLiteral {
    static func isIP(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

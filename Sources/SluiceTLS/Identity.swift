import Foundation
import X509

/// Who a certificate speaks for in a Sluice cluster: a SAN URI `spiffe://sluice/<role>/<name>`.
/// The role decides what the holder may do (serve as the coordinator, lease partitions as a
/// worker, read the status as an operator); for a worker, the name is its worker id.
public struct ClusterIdentity: Sendable, Hashable, CustomStringConvertible {
    public enum Role: String, Sendable, CaseIterable {
        case coordinator, worker, `operator`

        /// The extended key usage a leaf of this role must carry (and the only one
        /// `sluice certs init` gives it): the coordinator serves, the others are clients.
        public var usage: ExtendedKeyUsage.Usage { self == .coordinator ? .serverAuth : .clientAuth }
        var usageName: String { self == .coordinator ? "server auth" : "client auth" }
        /// "a worker", "an operator".
        var withArticle: String { (self == .operator ? "an " : "a ") + rawValue }
    }

    public static let trustDomain = "sluice"

    public var role: Role
    public var name: String

    public init(role: Role, name: String) {
        self.role = role
        self.name = name
    }

    public var uri: String { "spiffe://\(Self.trustDomain)/\(role.rawValue)/\(name)" }
    public var description: String { uri }

    /// A name is one path segment: letters, digits, `.`, `-` and `_` (pod names fit).
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 253
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-._".unicodeScalars.contains($0) }
    }

    /// Parses `spiffe://sluice/<role>/<name>`; nil for any other URI (other trust domains included).
    public init?(uri: String) {
        let prefix = "spiffe://\(Self.trustDomain)/"
        guard uri.hasPrefix(prefix) else { return nil }
        let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let role = Role(rawValue: String(parts[0])), Self.isValidName(String(parts[1])) else { return nil }
        self.init(role: role, name: String(parts[1]))
    }

    /// The identity `certificate` carries; throws when it carries none, or more than one.
    public init(certificate: Certificate) throws {
        let names: [GeneralName] = (try? certificate.extensions.subjectAlternativeNames).map { Array($0) } ?? []
        let ids = names.compactMap { name -> ClusterIdentity? in
            if case .uniformResourceIdentifier(let uri) = name { return ClusterIdentity(uri: uri) }
            return nil
        }
        guard let first = ids.first else {
            throw TLSConfigurationError("the certificate of '\(certificate.subject)' has no Sluice identity: it needs a SAN URI spiffe://sluice/<coordinator|worker|operator>/<name> (`sluice certs init` writes one; with cert-manager set `uris:`, see k8s/README.md)")
        }
        guard ids.count == 1 else {
            throw TLSConfigurationError("the certificate of '\(certificate.subject)' names several Sluice identities (\(ids.map(\.uri).joined(separator: ", "))); issue it with exactly one")
        }
        self = first
    }

    /// Refuses a certificate that is not of `role`, or lacks the role's extended key usage.
    public static func require(_ role: Role, of certificate: Certificate) throws -> ClusterIdentity {
        let identity = try ClusterIdentity(certificate: certificate)
        guard identity.role == role else {
            throw TLSConfigurationError("the certificate is \(identity.uri), \(identity.role.withArticle)'s certificate; \(role.withArticle) needs spiffe://sluice/\(role.rawValue)/<name>")
        }
        let usages: [ExtendedKeyUsage.Usage] = (try? certificate.extensions.extendedKeyUsage).map { Array($0) } ?? []
        guard usages.contains(role.usage) else {
            throw TLSConfigurationError("the certificate \(identity.uri) lacks the extended key usage '\(role.usageName)' that \(role.withArticle) needs; reissue it with that usage")
        }
        return identity
    }
}

extension ClusterIdentity {
    /// For messages: the identity a certificate claims, or its subject when it claims none.
    public static func describe(_ certificate: Certificate) -> String {
        (try? ClusterIdentity(certificate: certificate).uri) ?? "no Sluice identity, subject '\(certificate.subject)'"
    }
}

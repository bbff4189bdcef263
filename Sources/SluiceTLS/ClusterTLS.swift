import GRPCNIOTransportHTTP2
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

    /// Refuses missing files up front with the path and the fix, instead of a TLS error later.
    public func check() throws {
        for (what, path) in [("certificate", certificate), ("private key", key), ("CA certificate", ca)] {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw TLSConfigurationError("cannot read the \(what) '\(path)'; create development certificates with `sluice certs init --dir DIR`")
            }
        }
    }

    /// The coordinator: TLS 1.3, a client certificate from our CA required.
    public func server() throws -> HTTP2ServerTransport.Posix.TransportSecurity {
        try check()
        return .mTLS(certificateChain: [.file(path: certificate, format: .pem)], privateKey: .file(path: key, format: .pem)) { config in
            config.trustRoots = .certificates([.file(path: ca, format: .pem)])
            config.clientCertificateVerification = .noHostnameVerification
        }
    }

    /// A worker or `sluice status`: presents its certificate, trusts only our CA, checks the
    /// coordinator's name.
    public func client() throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        try check()
        return .mTLS(certificateChain: [.file(path: certificate, format: .pem)], privateKey: .file(path: key, format: .pem)) { config in
            config.trustRoots = .certificates([.file(path: ca, format: .pem)])
            config.serverCertificateVerification = .fullVerification
        }
    }
}

import Foundation

/// Where a client dials the coordinator: an IPv4 or IPv6 literal as is, a name through DNS (in
/// Kubernetes, the coordinator's Service), whose certificate must then carry that name.
public func coordinatorTarget(host: String, port: Int) -> any ResolvableTarget {
    var v4 = in_addr(), v6 = in6_addr()
    if inet_pton(AF_INET, host, &v4) == 1 { return .ipv4(address: host, port: port) }
    if inet_pton(AF_INET6, host, &v6) == 1 { return .ipv6(address: host, port: port) }
    return .dns(host: host, port: port)
}

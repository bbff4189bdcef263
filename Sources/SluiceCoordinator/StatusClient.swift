import GRPCCore
import GRPCNIOTransportHTTP2
import SluiceProtocol
import SluiceTLS

/// The coordinator's status (partitions, owners, epochs, workers): `sluice status`, the demo, the
/// benchmarks and the chaos harness ask it the same way. The client half of `Status`, kept next to
/// the server that answers it.
public func fetchStatus(host: String, port: Int, tls: TLSFiles?, timeout: Duration = .seconds(5)) async throws -> Sluice_V1_StatusResponse {
    let security: HTTP2ClientTransport.Posix.TransportSecurity = try tls?.client(serverHost: host) ?? .plaintext
    let transport = try HTTP2ClientTransport.Posix(target: coordinatorTarget(host: host, port: port), transportSecurity: security)
    return try await withGRPCClient(transport: transport) { client in
        var options = CallOptions.defaults
        options.timeout = timeout
        return try await Sluice_V1_Coordinator.Client(wrapping: client).status(Sluice_V1_StatusRequest(), options: options)
    }
}

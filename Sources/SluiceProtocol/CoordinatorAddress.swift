#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GRPCNIOTransportHTTP2

/// Where a client (a worker, `sluice status`) dials the coordinator: an IPv4 or IPv6 literal as is,
/// a name through DNS (in Kubernetes, the coordinator's Service), whose certificate must then carry
/// that name. Hand-written, next to the generated protocol, so that every client of the control
/// plane shares it without linking the coordinator.
public func coordinatorTarget(host: String, port: Int) -> any ResolvableTarget {
    var v4 = in_addr(), v6 = in6_addr()
    if inet_pton(AF_INET, host, &v4) == 1 { return .ipv4(address: host, port: port) }
    if inet_pton(AF_INET6, host, &v6) == 1 { return .ipv6(address: host, port: port) }
    return .dns(host: host, port: port)
}

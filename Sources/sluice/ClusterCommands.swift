import ArgumentParser
import Foundation
import Metrics
import SluiceConnectors
import SluiceCoordinator
import SluiceJob
import SluiceOps
import SluiceProtocol
import SluiceStorage
import SluiceRuntime
import SluiceTLS
import SluiceWorkload

/// Where TLS files come from: `--certs DIR` (as written by `sluice certs init`) or explicit files;
/// `--insecure` for plain TCP, loudly.
struct TLSOptions: ParsableArguments {
    @Option(help: "Directory written by `sluice certs init`.") var certs: String?
    @Option(help: "Certificate (PEM); overrides --certs.") var cert: String?
    @Option(help: "Private key (PEM); overrides --certs.") var key: String?
    @Option(help: "CA certificate to trust (PEM); overrides --certs.") var ca: String?
    @Flag(help: "Plain TCP without TLS, for local debugging only.") var insecure = false

    func files(identity: String, warn: (String) -> Void = { note($0) }) throws -> TLSFiles? {
        if insecure {
            warn("WARNING: --insecure: plain TCP, no authentication; anyone who can connect can act as any worker. Never use this outside local debugging.")
            return nil
        }
        if let cert, let key, let ca { return TLSFiles(certificate: cert, key: key, ca: ca) }
        guard let certs else {
            throw ValidationError("no TLS identity: pass --certs DIR (from `sluice certs init`), or --cert, --key and --ca; or --insecure for plain TCP")
        }
        var files = TLSFiles(directory: certs, identity: identity)
        if let cert { files.certificate = cert }
        if let key { files.key = key }
        if let ca { files.ca = ca }
        return files
    }
}

func parseAddress(_ text: String, option: String) throws -> (host: String, port: Int) {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 2, let port = Int(parts[1]), (0...65_535).contains(port), !parts[0].isEmpty else {
        throw ValidationError("\(option) must be HOST:PORT (for example 127.0.0.1:7400), got '\(text)'")
    }
    return (String(parts[0]), port)
}

struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Development certificates.", subcommands: [Init.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a development CA, a coordinator certificate, worker certificates and an operator certificate (for `sluice status`).")
        @Option(help: "Output directory.") var dir: String
        @Option(help: "Number of worker certificates (worker-1 …).") var workers: Int = 8

        func run() throws {
            guard workers >= 0 else { throw userError(ValidationError("--workers must be >= 0")) }
            do {
                let ids = try DevelopmentCertificates.initialize(directory: dir, workers: workers, extraIdentities: ["operator"])
                print("wrote ca.pem and \(ids.count) certificates (\(ids.joined(separator: ", "))) to \(dir)")
            } catch {
                throw userError(error)
            }
        }
    }
}


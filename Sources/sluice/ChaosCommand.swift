import ArgumentParser
import Foundation
import SluiceChaos
import SluiceOps
import UnixSignals

/// `sluice chaos run SUITE --out DIR [--seed N]`: a game-day suite against a local cluster.
struct Chaos: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Game-day chaos suites.", subcommands: [RunSuite.self, Render.self])

    struct RunSuite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run a suite (chaos/suites/*.yaml): start a cluster, inject its faults, check exactly-once; exit 0 only if every check passed.")

        @Argument(help: "The suite (YAML).") var suite: String
        @Option(help: "Directory for the input, the sink, the stores, the logs and the report (must not hold a run already).") var out: String
        @Option(help: "Seed of the random nemesis (overrides the suite's).") var seed: UInt64?
        @Flag(help: "No progress line.") var quiet = false
        @OptionGroup var logOptions: LogOptions

        func run() async throws {
            logOptions.bootstrap()
            #if DEBUG
            let build = "debug"
            #else
            let build = "release"
            #endif
            let runner = ChaosRun(options: .init(suitePath: suite, out: out, seed: seed, progress: !quiet, build: build),
                                  logger: SluiceLogging.logger("chaos"))
            // SIGINT or SIGTERM cancels the run, which stops its cluster and writes what report it
            // can; a second one exits at once.
            let running = Task { try await runner.run() }
            let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
            let watcher = Task {
                var seen = 0
                for await signal in signals {
                    seen += 1
                    guard seen == 1 else { Foundation.exit(130) }
                    note("chaos: \(signal): stopping the cluster and writing the report (again to quit at once)")
                    running.cancel()
                }
            }
            defer { watcher.cancel() }
            let report: ChaosReport
            do {
                report = try await running.value
            } catch is CancellationError {
                note("chaos: interrupted before the cluster was up; stopped what had started")
                throw ExitCode(130)
            } catch {
                throw userError(error)
            }
            for check in report.checks {
                print("\(check.passed ? "PASS" : "FAIL")  \(check.name): \(check.evidence.first ?? "")")
                if !check.passed { for line in check.evidence.dropFirst().prefix(3) { print("        \(line)") } }
            }
            let worst = report.worstRecoverySeconds.map { String(format: "%.1f s", $0) } ?? "never"
            print("\(report.passed ? "PASS" : "FAIL"): \(report.faults.count) faults, worst recovery \(worst), "
                  + "run \(String(format: "%.1f", report.runSeconds)) s; report in \(out)/report.md")
            if report.interrupted == true { throw ExitCode(130) }
            if !report.passed { throw ExitCode(1) }
        }
    }

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Draw report.md and timeline.svg of a run directory again from its report.json and observations.json.")

        @Argument(help: "A directory written by `sluice chaos run --out`.") var dir: String

        func run() throws {
            do {
                let report = try ChaosReport.render(directory: dir)
                print("\(report.passed ? "PASS" : "FAIL"): redrew \(dir)/report.md and \(dir)/timeline.svg")
            } catch {
                throw userError(error)
            }
        }
    }
}

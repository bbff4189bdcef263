/// Exponential backoff with "equal jitter", the one retry rule of Sluice: after the n-th
/// consecutive failure, wait between half and all of `base · 2^(n-1)`, capped at `cap`. The jitter
/// keeps clients that failed together (workers after a coordinator restart, partitions after a
/// database blip) from retrying in step. Pure: the caller sleeps, and passes the generator.
public struct Backoff: Sendable, Equatable {
    /// The step after the first failure (before jitter), in ms.
    public var baseMs: Int64
    /// No step exceeds this (before jitter), in ms.
    public var capMs: Int64

    public init(baseMs: Int64, capMs: Int64) {
        precondition(baseMs > 0 && capMs >= baseMs, "backoff: 0 < base <= cap")
        self.baseMs = baseMs
        self.capMs = capMs
    }

    /// The step after `failures` consecutive failures (1 = the first), without jitter.
    public func step(failures: Int) -> Int64 {
        guard failures > 0 else { return 0 }
        var delay = baseMs
        for _ in 1..<min(failures, 32) where delay < capMs { delay *= 2 }
        return min(delay, capMs)
    }

    /// The delay after `failures` consecutive failures: uniform in [step/2, step].
    public func delay(failures: Int, using random: inout some RandomNumberGenerator) -> Int64 {
        let step = step(failures: failures)
        guard step > 1 else { return step }
        return step / 2 + Int64.random(in: 0...(step - step / 2), using: &random)
    }

    /// As `delay(failures:using:)`, with the system's generator.
    public func delay(failures: Int) -> Int64 {
        var random = SystemRandomNumberGenerator()
        return delay(failures: failures, using: &random)
    }
}

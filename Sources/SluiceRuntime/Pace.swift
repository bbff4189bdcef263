/// A partition held to `rate` events per second (a throttle for demos, tests and replays at a fixed
/// speed), measured from when the pace was set.
struct Pace: Sendable {
    let rate: Double
    let startEvents: Int64
    let started = ContinuousClock.now

    /// nil for no throttle (`rate` nil or not positive).
    init?(rate: Double?, startEvents: Int64) {
        guard let rate, rate > 0 else { return nil }
        self.rate = rate
        self.startEvents = startEvents
    }

    /// How long to wait before the next block: how far `eventsIn` is ahead of the pace (zero when behind).
    func wait(eventsIn: Int64) -> Duration {
        let ahead = Double(eventsIn - startEvents) / rate - (ContinuousClock.now - started).seconds
        return ahead > 0 ? .milliseconds(Int64((ahead * 1_000).rounded(.up))) : .zero
    }
}

extension Duration {
    /// The duration in whole nanoseconds (rounded toward zero).
    public var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
    /// The duration in whole milliseconds (rounded toward zero).
    public var milliseconds: Int64 { nanoseconds / 1_000_000 }
    /// The duration in seconds.
    public var seconds: Double { Double(nanoseconds) / 1e9 }
}

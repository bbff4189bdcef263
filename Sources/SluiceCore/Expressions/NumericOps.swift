// Exact numerics for the evaluator: int64, uint64 and decimal values seen as a rational
// `unscaled / 10^scale` held in an Int128 (every such value fits: |v| < 2^64), exact comparison of
// those with a float64, half-even decimal division, half-away-from-zero rounding.

enum NumericOps {
    /// 10^0 ... 10^38 (10^38 < 2^127).
    static let powers: [Int128] = (0...38).map { e in (0..<e).reduce(Int128(1)) { p, _ in p * 10 } }
    /// 10^0 ... 10^18 as doubles (all exact).
    static let doublePowers: [Double] = (0...18).map { e in (0..<e).reduce(1.0) { p, _ in p * 10 } }

    /// An int64, uint64 or decimal as `(unscaled, scale)`; nil for other values.
    @inline(__always)
    static func exact(_ v: Value) -> (Int128, Int)? {
        switch v {
        case .int64(let x): (Int128(x), 0)
        case .uint64(let x): (Int128(x), 0)
        case .decimal(let x, let scale): (Int128(x), scale)
        default: nil
        }
    }

    /// The float64 of a numeric value: integers by Double's nearest-even conversion, decimals as
    /// `Double(unscaled) / 10^scale` (two correctly rounded steps).
    @inline(__always)
    static func double(_ v: Value) -> Double? {
        switch v {
        case .float64(let d): d
        case .int64(let x): Double(x)
        case .uint64(let x): Double(x)
        case .decimal(let x, let scale): scale < doublePowers.count ? Double(x) / doublePowers[scale] : nil
        default: nil
        }
    }

    /// `unscaled` brought from `scale` to `target` (>= scale) exactly, or nil on overflow of Int128.
    @inline(__always)
    static func rescale(_ unscaled: Int128, from scale: Int, to target: Int) -> Int128? {
        if target == scale { return unscaled }
        guard target > scale, target - scale < powers.count else { return nil }
        let (v, overflow) = unscaled.multipliedReportingOverflow(by: powers[target - scale])
        return overflow ? nil : v
    }

    @inline(__always)
    static func int64(_ v: Int128) -> Int64? {
        v >= Int128(Int64.min) && v <= Int128(Int64.max) ? Int64(v) : nil
    }

    /// Sign of `a/10^s − b/10^t`.
    static func compare(_ a: Int128, _ s: Int, _ b: Int128, _ t: Int) -> Int {
        let scale = max(s, t)
        // Both magnitudes are below 2^64 and 10^18 < 2^60: the rescaled values fit.
        guard let x = rescale(a, from: s, to: scale), let y = rescale(b, from: t, to: scale) else { return 0 }
        return x < y ? -1 : (x > y ? 1 : 0)
    }

    /// Sign of `a/10^s − d`, exactly (d finite; |a| < 2^64; s <= 18).
    static func compare(_ a: Int128, _ s: Int, _ d: Double) -> Int {
        if d >= 0x1p64 { return -1 }
        if d <= -0x1p64 { return 1 }
        if d == 0 { return a < 0 ? -1 : (a > 0 ? 1 : 0) }
        // d = M × 2^e exactly, |M| < 2^53.
        let bits = d.exponentBitPattern
        let m = Int128(bits == 0 ? d.significandBitPattern : d.significandBitPattern | (1 << 52))
        let e = (bits == 0 ? 1 : Int(bits)) - 1075
        let M = d < 0 ? -m : m
        // Compare a with d × 10^s = M × 10^s × 2^e.
        let scaled = M * powers[s]  // |.| < 2^53 × 2^60
        if e >= 0 {
            let rhs = scaled << e  // |d| < 2^64, so |rhs| < 2^124
            return a < rhs ? -1 : (a > rhs ? 1 : 0)
        }
        let k = -e
        if k > 120 {
            // |d × 10^s| < 2^113 / 2^121 < 1, and a is an integer.
            if a >= 1 { return 1 }
            if a <= -1 { return -1 }
            return M > 0 ? -1 : 1
        }
        let q = scaled >> k  // floor
        let r = scaled & ((Int128(1) << k) - 1)  // d × 10^s = q + r / 2^k, 0 <= r < 2^k
        if a < q { return -1 }
        if a > q { return 1 }
        return r == 0 ? 0 : -1
    }

    /// `a × 10^e / b` rounded half to even (b ≠ 0, e >= 0), or nil when it leaves ±2^64.
    static func divideHalfEven(_ a: Int128, _ b: Int128, exponent e: Int) -> Int128? {
        let ua = a.magnitude, ub = b.magnitude
        let limit: UInt128 = 1 << 64
        var q = ua / ub
        var r = ua % ub
        guard q <= limit else { return nil }
        for _ in 0..<e {
            r *= 10  // r < ub < 2^65
            q = q * 10 + r / ub
            r %= ub
            guard q <= limit else { return nil }
        }
        let twice = r * 2
        if twice > ub || (twice == ub && q & 1 == 1) { q += 1 }
        let magnitude = Int128(q)
        return (a < 0) != (b < 0) ? -magnitude : magnitude
    }

    /// `a/10^s` rounded half away from zero to `n` fraction digits, as an unscaled value at scale
    /// n, or nil on overflow of Int128.
    static func roundHalfAway(_ a: Int128, from s: Int, to n: Int) -> Int128? {
        if n >= s { return rescale(a, from: s, to: n) }
        let p = powers[s - n]
        var q = a / p
        let r = a % p
        if r.magnitude * 2 >= p.magnitude { q += a < 0 ? -1 : 1 }
        return q
    }

    /// A double rounded half away from zero, as `Double.rounded(.toNearestOrAwayFromZero)` but
    /// without libm (SluiceCore links no C math library): below 2^52 through Int64 truncation.
    static func roundHalfAway(_ x: Double) -> Double {
        guard x.magnitude < 0x1p52 else { return x }  // already an integer
        let truncated = Double(Int64(x))
        let fraction = x - truncated  // exact
        let r = fraction.magnitude >= 0.5 ? truncated + (x < 0 ? -1 : 1) : truncated
        return r == 0 ? Double(signOf: x, magnitudeOf: 0) : r
    }

    /// `x.truncatingRemainder(dividingBy: y)` (C's fmod: exact, the sign of x) without libm:
    /// subtracts y × 2^k from |x|, largest k first; each subtraction is exact (Sterbenz).
    static func truncatingRemainder(_ x: Double, _ y: Double) -> Double {
        var r = x.magnitude
        let m = y.magnitude
        guard r.isFinite, m.isFinite, m != 0 else { return .nan }
        while r >= m {
            var t = Double(sign: .plus, exponent: r.exponent, significand: m.significand)
            if t > r { t = Double(sign: .plus, exponent: r.exponent - 1, significand: m.significand) }
            r -= t
        }
        return Double(signOf: x, magnitudeOf: r)
    }

    /// Three-way byte-wise comparison of two strings' UTF-8.
    static func compareUTF8(_ a: String, _ b: String) -> Int {
        // Native strings are contiguous UTF-8: compare the buffers; others byte by byte.
        let contiguous = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in
                let n = min(x.count, y.count)
                var i = 0
                while i < n {
                    if x[i] != y[i] { return x[i] < y[i] ? -1 : 1 }
                    i += 1
                }
                return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
            }
        }
        if let contiguous, let order = contiguous { return order }
        var x = a.utf8.makeIterator(), y = b.utf8.makeIterator()
        while true {
            switch (x.next(), y.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case let (p?, q?): if p != q { return p < q ? -1 : 1 }
            }
        }
    }

    /// Whether `needle`'s UTF-8 bytes occur in `haystack`'s.
    static func containsUTF8(_ haystack: String, _ needle: String) -> Bool {
        var h = haystack, n = needle
        return h.withUTF8 { hb in
            n.withUTF8 { nb in
                if nb.isEmpty { return true }
                guard nb.count <= hb.count else { return false }
                let first = nb[0]
                var i = 0
                while i <= hb.count - nb.count {
                    if hb[i] == first {
                        var j = 1
                        while j < nb.count, hb[i + j] == nb[j] { j += 1 }
                        if j == nb.count { return true }
                    }
                    i += 1
                }
                return false
            }
        }
    }

    static func endsWithUTF8(_ s: String, _ suffix: String) -> Bool {
        let n = s.utf8.count, m = suffix.utf8.count
        return m <= n && s.utf8.dropFirst(n - m).elementsEqual(suffix.utf8)
    }
}

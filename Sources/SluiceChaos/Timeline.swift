import Foundation

/// timeline.svg: one lane per worker with the partitions it held over time (one colored row per
/// partition), the faults marked where and when they acted, and committed events per second below.
enum Timeline {
    static func svg(report: ChaosReport, observations: Observations) -> String {
        let partitions = max(1, report.partitions)
        let duration = max(1, report.runSeconds)
        let left = 120.0, right = 30.0, width = 1200.0
        let plot = width - left - right
        let rowHeight = max(3.0, min(8.0, 64.0 / Double(partitions)))
        let laneHeight = rowHeight * Double(partitions) + 12
        func x(_ t: Double) -> Double { ((left + max(0, min(duration, t)) / duration * plot) * 10).rounded() / 10 }
        func color(_ p: Int) -> String { palette[p % palette.count] }

        var workers = Set(observations.owners.flatMap { $0.held.keys })
        // Workers only: a coordinator kill names the coordinator it killed (a band, not a lane).
        for f in report.faults { if let t = f.target, t.hasPrefix("worker-") { workers.insert(t) } }
        let lanes = workers.sorted { (Int($0.dropFirst(7)) ?? 0, $0) < (Int($1.dropFirst(7)) ?? 0, $1) }
        let top = 50.0
        let lanesBottom = top + Double(lanes.count) * laneHeight
        let chartTop = lanesBottom + 40, chartHeight = 110.0
        let legendTop = chartTop + chartHeight + 40
        // A soak's thousand faults are listed in report.md; the drawing lists the first ones.
        let listed = Array(report.faults.prefix(Self.legendFaults))
        let height = legendTop + 18 * Double(listed.count + 3) + 10

        var s: [String] = []
        s.append(##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(width))" height="\##(Int(height))" font-family="sans-serif" font-size="12">"##)
        s.append(##"<rect width="100%" height="100%" fill="white"/>"##)
        let verdict = report.passed ? "PASS" : "FAIL"
        s.append(##"<text x="\##(left)" y="22" font-size="16" font-weight="bold">\##(xml(report.suite))\##(report.seed.map { " (seed \($0))" } ?? ""): \##(verdict) — \##(report.faults.count) faults, worst recovery \##(report.worstRecoverySeconds.map { String(format: "%.1f s", $0) } ?? "never")</text>"##)
        s.append(##"<text x="\##(left)" y="40" fill="#555">partitions held per worker over time (one row per partition, colored by partition); red: a fault acting on that worker; purple band: the coordinator down\##(report.faults.contains { $0.kind.needsKafka } ? "; teal: a Kafka fault (a broker down for its band; a leader move or failing requests at an instant)" : "")</text>"##)

        // Time grid.
        let step = duration > 300 ? 60.0 : duration > 120 ? 20.0 : 10.0
        var t = 0.0
        for _ in 0..<1_000 where t <= duration {
            s.append(##"<line x1="\##(x(t))" y1="\##(top)" x2="\##(x(t))" y2="\##(chartTop + chartHeight)" stroke="#eee"/>"##)
            s.append(##"<text x="\##(x(t))" y="\##(chartTop + chartHeight + 15)" text-anchor="middle" fill="#555">\##(Int(t)) s</text>"##)
            t += step
        }

        // Lanes with their partitions.
        for (i, worker) in lanes.enumerated() {
            let y0 = top + Double(i) * laneHeight
            s.append(##"<rect x="\##(left)" y="\##(y0)" width="\##(plot)" height="\##(laneHeight - 4)" fill="#f7f7f7"/>"##)
            s.append(##"<text x="\##(left - 8)" y="\##(y0 + laneHeight / 2)" text-anchor="end" dominant-baseline="middle">\##(xml(worker))</text>"##)
            for (j, sample) in observations.owners.enumerated() {
                let next = j + 1 < observations.owners.count ? observations.owners[j + 1].t : sample.t + 1
                let end = min(next, sample.t + 3)  // a gap in the samples (coordinator down) stays blank
                for p in sample.held[worker] ?? [] {
                    let finished = sample.finished.contains(p)
                    s.append(##"<rect x="\##(x(sample.t))" y="\##(y0 + 4 + Double(p) * rowHeight)" width="\##(max(0.5, x(end) - x(sample.t)))" height="\##(rowHeight - 1)" fill="\##(color(p))" opacity="\##(finished ? 0.3 : 0.9)"/>"##)
                }
            }
        }

        // Faults.
        for f in report.faults {
            let start = f.injectedAt, end = max(f.healedAt ?? f.injectedAt, f.injectedAt + 0.3)
            let label = "\(f.index + 1)"
            if let target = f.target, let lane = lanes.firstIndex(of: target) {
                let y0 = top + Double(lane) * laneHeight
                s.append(##"<rect x="\##(x(start))" y="\##(y0)" width="\##(max(2, x(end) - x(start)))" height="\##(laneHeight - 4)" fill="red" opacity="0.22"><title>\##(xml(f.summary))</title></rect>"##)
                s.append(##"<line x1="\##(x(start))" y1="\##(y0)" x2="\##(x(start))" y2="\##(y0 + laneHeight - 4)" stroke="red" stroke-width="2"/>"##)
                s.append(##"<text x="\##(x(start) + 3)" y="\##(y0 + 11)" fill="#b00" font-weight="bold">\##(label)</text>"##)
            } else {
                let fill = f.kind == .killCoordinator ? "purple" : f.kind == .restartStore ? "darkorange" : f.kind.needsKafka ? "teal" : "red"
                s.append(##"<rect x="\##(x(start))" y="\##(top)" width="\##(max(2, x(end) - x(start)))" height="\##(lanesBottom - top)" fill="\##(fill)" opacity="0.15"><title>\##(xml(f.summary))</title></rect>"##)
                s.append(##"<text x="\##(x(start) + 3)" y="\##(top - 2)" fill="\##(fill)" font-weight="bold">\##(label)</text>"##)
            }
        }

        // Committed events per second.
        var rates: [(Double, Double)] = []
        var last: Observations.CommittedSample?
        for p in observations.progress {
            if let l = last, p.t - l.t >= 1 {
                rates.append(((p.t + l.t) / 2, Double(p.committed - l.committed) / (p.t - l.t)))
                last = p
            } else if last == nil {
                last = p
            }
        }
        let peak = max(1, rates.map(\.1).max() ?? 1)
        s.append(##"<rect x="\##(left)" y="\##(chartTop)" width="\##(plot)" height="\##(chartHeight)" fill="none" stroke="#ccc"/>"##)
        s.append(##"<text x="\##(left - 8)" y="\##(chartTop + 12)" text-anchor="end">\##(Int(peak))/s</text>"##)
        s.append(##"<text x="\##(left - 8)" y="\##(chartTop + chartHeight)" text-anchor="end">0</text>"##)
        s.append(##"<text x="\##(left)" y="\##(chartTop - 6)" fill="#555">events committed per second (all partitions)</text>"##)
        let points = rates.map { "\(x($0.0)),\(chartTop + chartHeight - $0.1 / peak * chartHeight)" }.joined(separator: " ")
        s.append(##"<polyline points="\##(points)" fill="none" stroke="#1f77b4" stroke-width="1.5"/>"##)
        for f in report.faults {
            s.append(##"<line x1="\##(x(f.injectedAt))" y1="\##(chartTop)" x2="\##(x(f.injectedAt))" y2="\##(chartTop + chartHeight)" stroke="red" stroke-dasharray="3,3"/>"##)
        }

        // Legend: partition colors, then the faults.
        var lx = left
        s.append(##"<text x="\##(lx)" y="\##(legendTop)">partitions:</text>"##)
        lx += 75
        for p in 0..<partitions {
            s.append(##"<rect x="\##(lx)" y="\##(legendTop - 10)" width="12" height="12" fill="\##(color(p))"/><text x="\##(lx + 15)" y="\##(legendTop)">\##(p)</text>"##)
            lx += 40
        }
        if report.faults.count > listed.count {
            s.append(##"<text x="\##(left)" y="\##(legendTop + 18 * Double(listed.count + 1))">… and \##(report.faults.count - listed.count) more faults (report.md lists every one)</text>"##)
        }
        for (i, f) in listed.enumerated() {
            let recovery = f.affected.isEmpty ? "" : " — recovery " + (f.recoverySeconds.map { String(format: "%.1f s", $0) } ?? "never")
            s.append(##"<text x="\##(left)" y="\##(legendTop + 18 * Double(i + 1))">\##(f.index + 1). \##(String(format: "%.1f", f.injectedAt)) s: \##(xml(f.summary))\##(recovery)</text>"##)
        }
        s.append("</svg>")
        return s.joined(separator: "\n") + "\n"
    }

    /// Faults listed under the drawing (all of a game-day suite's; a soak's are in report.md).
    static let legendFaults = 200

    /// Distinct colors (Tableau 20), as hex: some SVG renderers do not know hsl().
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#393b79", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                          "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]

    static func xml(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

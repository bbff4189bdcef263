import SluiceCoordinator
import Testing

@Suite struct AssignmentTests {
    func counts(_ a: [Int: String]) -> [String: Int] {
        var c: [String: Int] = [:]
        for (_, w) in a { c[w, default: 0] += 1 }
        return c
    }

    @Test func balancedForEveryShape() {
        for partitions in [1, 2, 7, 8, 9, 64, 100] {
            for n in 1...12 {
                let workers = (0..<n).map { "w\($0)" }
                let a = Assignment.balance(partitions: partitions, workers: workers, current: [:])
                #expect(a.count == partitions)
                let c = counts(a)
                let lo = partitions / n, hi = (partitions + n - 1) / n
                for w in workers { #expect((lo...hi).contains(c[w] ?? 0), "P=\(partitions) N=\(n) \(w)=\(c[w] ?? 0)") }
            }
        }
    }

    @Test func aFourthWorkerTakesTwoAndNothingElseMoves() {
        let three = Assignment.balance(partitions: 8, workers: ["a", "b", "c"], current: [:])
        let four = Assignment.balance(partitions: 8, workers: ["a", "b", "c", "d"], current: three)
        #expect(counts(four) == ["a": 2, "b": 2, "c": 2, "d": 2])
        #expect(Assignment.moves(from: three, to: four).count == 2)
        for p in Assignment.moves(from: three, to: four) { #expect(four[p] == "d") }
    }

    @Test func aLeavingWorkerOnlyMovesItsOwn() {
        let four = Assignment.balance(partitions: 8, workers: ["a", "b", "c", "d"], current: [:])
        let three = Assignment.balance(partitions: 8, workers: ["a", "b", "c"], current: four)
        for (p, owner) in four where owner != "d" { #expect(three[p] == owner) }
        #expect(Set(counts(three).values) == [2, 3])
    }

    /// Sticky against brute force: over random memberships, the number of moved partitions is the
    /// least any balanced assignment could achieve.
    @Test func movesAreMinimal() {
        var seed: UInt64 = 12345
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 33 }
        for _ in 0..<300 {
            let partitions = Int(1 + next() % 30)
            let all = (0..<6).map { "w\($0)" }
            let before = all.filter { _ in next() % 2 == 0 }
            let after = all.filter { _ in next() % 3 != 0 }
            guard !before.isEmpty, !after.isEmpty else { continue }
            let old = Assignment.balance(partitions: partitions, workers: before, current: [:])
            let new = Assignment.balance(partitions: partitions, workers: after, current: old)
            // Lower bound: a partition must move if its owner left, or if its owner holds more than
            // the largest quota (ceil) — and the holders of more than ceil must shed the excess;
            // holders at ceil may keep all only as many as there are ceil slots.
            let n = after.count, hi = (partitions + n - 1) / n, lo = partitions / n
            let ceilSlots = partitions - lo * n
            var kept: [Int] = after.map { w in old.values.filter { $0 == w }.count }
            kept.sort(by: >)
            var canKeep = 0
            for (i, k) in kept.enumerated() { canKeep += min(k, i < ceilSlots ? hi : lo) }
            let heldByStayers = old.values.filter { after.contains($0) }.count
            let unavoidable = (partitions - heldByStayers) == 0 ? heldByStayers - canKeep : (old.count - heldByStayers) + (heldByStayers - canKeep)
            #expect(Assignment.moves(from: old, to: new).count == unavoidable)
            #expect(new.count == partitions)
        }
    }
}

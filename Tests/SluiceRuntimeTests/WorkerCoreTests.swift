// WorkerCore, the worker's pure lease and partition logic: inputs in, actions out, no I/O and no
// clock, so every case here is exact.

import SluiceCore
import SluiceRuntime
import Testing

private typealias Lease = WorkerCore.Lease

private func lease(_ p: Int, _ e: Int64) -> Lease { Lease(partition: p, epoch: e) }

/// A core that has joined (heartbeat every 500 ms) at t = 0.
private func joinedCore(coordinators: Int = 1, graceMs: Int64 = 10_000, seed: UInt64 = 7) -> WorkerCore {
    var core = WorkerCore(settings: .init(coordinators: coordinators, graceMs: graceMs), seed: seed)
    _ = core.handle(.start, nowMs: 0)
    _ = core.handle(.joined(heartbeatIntervalMs: 500), nowMs: 0)
    return core
}

@Suite struct WorkerCoreTests {
    @Test("Start dials the first coordinator; a join arms the first heartbeat at once; heartbeats re-arm")
    func startJoinHeartbeat() {
        var core = WorkerCore(settings: .init(coordinators: 2), seed: 1)
        #expect(core.handle(.start, nowMs: 0) == [.connect(coordinator: 0)])
        #expect(core.handle(.joined(heartbeatIntervalMs: 500), nowMs: 10) == [.setTimer(.heartbeat, atMs: 10)])
        #expect(core.handle(.grant(lease(3, 4)), nowMs: 20) == [.startPartition(lease(3, 4))])
        #expect(core.handle(.heartbeatDue(reported: [lease(3, 4)]), nowMs: 30)
                == [.sendHeartbeat([lease(3, 4)]), .setTimer(.heartbeat, atMs: 530)])
        #expect(core.unanswered == [[lease(3, 4)]])
    }

    @Test("A grant for an epoch not newer than the one held changes nothing; a newer one restarts the partition")
    func grantsByEpoch() {
        var core = joinedCore()
        #expect(core.handle(.grant(lease(1, 5)), nowMs: 1) == [.startPartition(lease(1, 5))])
        #expect(core.handle(.grant(lease(1, 5)), nowMs: 2) == [])
        #expect(core.handle(.grant(lease(1, 4)), nowMs: 3) == [])
        #expect(core.handle(.grant(lease(1, 6)), nowMs: 4) == [.startPartition(lease(1, 6))])
        #expect(core.held == [1: 6])
    }

    @Test("Renewals answer heartbeats in order: what a heartbeat reported and its renewal leaves out is dropped")
    func renewalMatching() {
        var core = joinedCore()
        _ = core.handle(.grant(lease(0, 1)), nowMs: 1)
        _ = core.handle(.grant(lease(1, 1)), nowMs: 1)
        _ = core.handle(.heartbeatDue(reported: [lease(0, 1), lease(1, 1)]), nowMs: 100)
        _ = core.handle(.heartbeatDue(reported: [lease(0, 1)]), nowMs: 600)
        // The first renewal answers the first heartbeat: partition 1 was not renewed.
        #expect(core.handle(.renewal([lease(0, 1)]), nowMs: 700) == [.dropPartition(lease(1, 1))])
        #expect(core.held == [0: 1])
        // The second answers the second, which reported only partition 0.
        #expect(core.handle(.renewal([lease(0, 1)]), nowMs: 800) == [])
        // A renewal with no heartbeat outstanding (from before a reconnect) is ignored.
        #expect(core.handle(.renewal([]), nowMs: 900) == [])
        #expect(core.held == [0: 1])
    }

    @Test("Revoke: the host checkpoints and reports released, which is sent and ends the lease")
    func revokeThenRelease() {
        var core = joinedCore()
        _ = core.handle(.grant(lease(2, 3)), nowMs: 1)
        #expect(core.handle(.revoke(lease(2, 3)), nowMs: 2) == [.revokePartition(lease(2, 3))])
        #expect(core.held == [2: 3])
        #expect(core.handle(.host(.released(partition: 2, epoch: 3, committedOffset: 420)), nowMs: 3)
                == [.send(.released(lease(2, 3), committedOffset: 420))])
        #expect(core.held.isEmpty)
    }

    @Test("Fenced and failed partitions are reported (a failure's reason cut to 500 characters); finished is not")
    func fencedAndFailed() {
        var core = joinedCore()
        _ = core.handle(.grant(lease(0, 1)), nowMs: 1)
        _ = core.handle(.grant(lease(1, 1)), nowMs: 1)
        _ = core.handle(.grant(lease(2, 1)), nowMs: 1)
        #expect(core.handle(.host(.finished(partition: 2, epoch: 1)), nowMs: 2) == [])
        #expect(core.handle(.host(.fenced(partition: 0, epoch: 1)), nowMs: 2) == [.send(.fenced(lease(0, 1)))])
        let long = String(repeating: "x", count: 900)
        #expect(core.handle(.host(.failed(partition: 1, epoch: 1, reason: long)), nowMs: 3)
                == [.send(.failed(lease(1, 1), reason: String(repeating: "x", count: 500)))])
        #expect(core.held == [2: 1])
    }

    @Test("Reports made while disconnected wait, in order, and go out on the next session")
    func pendingAcrossSessions() {
        var core = joinedCore(coordinators: 2)
        _ = core.handle(.grant(lease(0, 1)), nowMs: 1)
        _ = core.handle(.grant(lease(1, 1)), nowMs: 1)
        _ = core.handle(.heartbeatDue(reported: [lease(0, 1), lease(1, 1)]), nowMs: 5)
        let lost = core.handle(.disconnected(reason: "reset"), nowMs: 10)
        #expect(lost.count == 1)
        #expect(core.unanswered.isEmpty, "a lost session's heartbeats will never be answered")
        #expect(core.handle(.host(.fenced(partition: 0, epoch: 1)), nowMs: 20) == [])
        #expect(core.handle(.host(.released(partition: 1, epoch: 1, committedOffset: 9)), nowMs: 30) == [])
        #expect(core.handle(.heartbeatDue(reported: []), nowMs: 40) == [], "no heartbeat without a session")
        #expect(core.handle(.reconnectDue, nowMs: 500) == [.connect(coordinator: 1)])
        #expect(core.handle(.joined(heartbeatIntervalMs: 500), nowMs: 600)
                == [.send(.fenced(lease(0, 1))), .send(.released(lease(1, 1), committedOffset: 9)), .setTimer(.heartbeat, atMs: 600)])
        #expect(core.pending.isEmpty)
    }

    @Test("Reconnection: Backoff with equal jitter (100 ms doubling to 2 s), coordinators in turn, reset by a join; same seed, same delays")
    func reconnection() {
        func delays(seed: UInt64) -> (delays: [Int64], dialled: [Int]) {
            var core = WorkerCore(settings: .init(coordinators: 3), seed: seed)
            var now: Int64 = 0
            var result: [Int64] = []
            var dialled: [Int] = []
            if case .connect(let i)? = core.handle(.start, nowMs: now).first { dialled.append(i) }
            for _ in 0..<7 {
                guard case .setTimer(.reconnect, let at)? = core.handle(.disconnected(reason: "refused"), nowMs: now).first else {
                    Issue.record("no reconnect timer")
                    break
                }
                result.append(at - now)
                now = at
                if case .connect(let i)? = core.handle(.reconnectDue, nowMs: now).first { dialled.append(i) }
            }
            return (result, dialled)
        }
        let (a, dialled) = delays(seed: 99)
        let steps: [Int64] = [100, 200, 400, 800, 1_600, 2_000, 2_000]
        for (delay, step) in zip(a, steps) {
            #expect(delay >= step / 2 && delay <= step, "delay \(delay) outside [\(step / 2), \(step)]")
        }
        #expect(dialled == [0, 1, 2, 0, 1, 2, 0, 1])
        #expect(delays(seed: 99).delays == a, "the same seed must give the same delays")
        #expect(delays(seed: 100).delays != a, "another seed should give other jitter")

        var core = WorkerCore(settings: .init(coordinators: 1), seed: 5)
        _ = core.handle(.start, nowMs: 0)
        _ = core.handle(.disconnected(reason: "x"), nowMs: 0)
        _ = core.handle(.reconnectDue, nowMs: 100)
        _ = core.handle(.disconnected(reason: "x"), nowMs: 100)
        #expect(core.failures == 2)
        _ = core.handle(.reconnectDue, nowMs: 300)
        _ = core.handle(.joined(heartbeatIntervalMs: 500), nowMs: 310)
        #expect(core.failures == 0)
        guard case .setTimer(.reconnect, let at)? = core.handle(.disconnected(reason: "x"), nowMs: 1_000).first else {
            Issue.record("no reconnect timer")
            return
        }
        #expect(at - 1_000 >= 50 && at - 1_000 <= 100, "after a join the backoff starts again from 100 ms")
    }

    @Test("Shutdown: release every partition, send each release, then close the session (a graceful leave), then stop")
    func gracefulShutdown() {
        var core = joinedCore(graceMs: 10_000)
        _ = core.handle(.grant(lease(0, 1)), nowMs: 1)
        _ = core.handle(.grant(lease(1, 2)), nowMs: 1)
        #expect(core.handle(.shutdownRequested, nowMs: 100) == [.setTimer(.grace, atMs: 10_100), .releaseAll])
        #expect(core.handle(.shutdownRequested, nowMs: 101) == [], "a second request changes nothing")
        // Heartbeats go on while partitions take their last checkpoints, so their leases hold.
        #expect(core.handle(.heartbeatDue(reported: [lease(0, 1), lease(1, 2)]), nowMs: 200).first
                == .sendHeartbeat([lease(0, 1), lease(1, 2)]))
        // A grant arriving now is not started: it is handed straight back.
        #expect(core.handle(.grant(lease(5, 9)), nowMs: 250) == [.send(.released(lease(5, 9), committedOffset: 0))])
        #expect(core.handle(.host(.released(partition: 0, epoch: 1, committedOffset: 10)), nowMs: 300)
                == [.send(.released(lease(0, 1), committedOffset: 10))])
        #expect(core.handle(.host(.released(partition: 1, epoch: 2, committedOffset: 20)), nowMs: 400)
                == [.send(.released(lease(1, 2), committedOffset: 20)), .closeSession])
        #expect(core.handle(.heartbeatDue(reported: []), nowMs: 500) == [], "no heartbeat after the session is closed")
        #expect(core.handle(.disconnected(reason: "the coordinator ended the session"), nowMs: 600) == [.stop])
        #expect(core.phase == .stopped)
        #expect(core.handle(.graceExpired, nowMs: 10_100) == [], "nothing after stop")
    }

    @Test("Shutdown is bounded: when the grace time passes, stop whatever is still held")
    func graceExpires() {
        var core = joinedCore(graceMs: 2_000)
        _ = core.handle(.grant(lease(0, 1)), nowMs: 1)
        #expect(core.handle(.shutdownRequested, nowMs: 10) == [.setTimer(.grace, atMs: 2_010), .releaseAll])
        #expect(core.handle(.graceExpired, nowMs: 2_010) == [.stop])
        #expect(core.held == [0: 1])
    }

    @Test("Shutdown while disconnected: no reconnection; stop once the partitions have released (their reports stay unsent)")
    func shutdownDisconnected() {
        var core = joinedCore()
        _ = core.handle(.grant(lease(0, 1)), nowMs: 1)
        _ = core.handle(.disconnected(reason: "reset"), nowMs: 5)
        #expect(core.handle(.shutdownRequested, nowMs: 10) == [.setTimer(.grace, atMs: 10_010), .releaseAll])
        #expect(core.handle(.reconnectDue, nowMs: 200) == [], "no dial during shutdown")
        #expect(core.handle(.host(.released(partition: 0, epoch: 1, committedOffset: 3)), nowMs: 300) == [.stop])

        var idle = WorkerCore(settings: .init(coordinators: 1), seed: 1)
        _ = idle.handle(.start, nowMs: 0)
        _ = idle.handle(.disconnected(reason: "refused"), nowMs: 1)
        #expect(idle.handle(.shutdownRequested, nowMs: 2) == [.setTimer(.grace, atMs: 10_002), .stop])
    }

    @Test("Shutdown with nothing held closes the session at once; a dial under way decides when it ends")
    func shutdownNothingHeld() {
        var core = joinedCore()
        #expect(core.handle(.shutdownRequested, nowMs: 5) == [.setTimer(.grace, atMs: 10_005), .closeSession])

        var dialling = WorkerCore(settings: .init(coordinators: 1), seed: 1)
        _ = dialling.handle(.start, nowMs: 0)
        #expect(dialling.handle(.shutdownRequested, nowMs: 1) == [.setTimer(.grace, atMs: 10_001)])
        #expect(dialling.handle(.joined(heartbeatIntervalMs: 500), nowMs: 2) == [.closeSession])
        #expect(dialling.handle(.disconnected(reason: "closed"), nowMs: 3) == [.stop])
    }
}

import Foundation
import Synchronization

/// A thread that runs `body` every `interval` until stopped (the leases' renewal, the nodes'
/// presence). Stopping waits for the round in progress, at most 50 ms beyond it.
final class PeriodicThread: Sendable {
    let stopping = Atomic<Bool>(false)
    let finished = Mutex(false)

    init(name: String, every interval: Duration, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            defer { finished.withLock { $0 = true } }
            while true {
                var slept = Duration.zero
                while slept < interval, !stopping.load(ordering: .relaxed) {
                    Thread.sleep(forTimeInterval: 0.05)
                    slept += .milliseconds(50)
                }
                guard !stopping.load(ordering: .relaxed) else { return }
                body()
            }
        }
        thread.name = name
        thread.start()
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        while !finished.withLock({ $0 }) { Thread.sleep(forTimeInterval: 0.01) }
    }
}

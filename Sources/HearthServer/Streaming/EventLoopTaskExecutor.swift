import NIOCore

/// Runs a task's jobs on one event loop: the one of the connection the task writes to.
///
/// A stream's pump otherwise wakes on Swift's global pool for every event, and each write
/// hops back to the connection's event loop. Preferred by the pump
/// (`withTaskExecutorPreference`), the task resumes on the loop that writes the socket, and
/// the write goes straight into the pipeline. Nothing run this way may block.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

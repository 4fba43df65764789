import Foundation

/// Decodes a log segment (checksums, records, values) on a thread of its own while the caller
/// applies the records already decoded, so that recovery uses two cores: batches pass through
/// a short queue, in order.
final class PipelinedSegmentRead: @unchecked Sendable {
    /// The state below, under `condition`.
    let condition = NSCondition()
    var batches: [[LogRecordCodec.Entry]] = []
    var outcome: Swift.Result<LogSegmentReader.Result, any Error>?
    var abandoned = false

    /// Batches decoded ahead of the caller, at most.
    static let depth = 8
    static let batchSize = 2048

    /// Starts decoding `bytes`, a whole segment.
    init(_ bytes: [UInt8]) {
        let thread = Thread { [self] in
            let result = Swift.Result {
                try bytes.withUnsafeBytes { buffer in
                    try LogSegmentReader.read(buffer, batchSize: PipelinedSegmentRead.batchSize) { put($0) }
                }
            }
            condition.lock()
            outcome = result
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "hearth-recovery-decode"
        thread.start()
    }

    func put(_ batch: [LogRecordCodec.Entry]) {
        condition.lock()
        defer { condition.unlock() }
        while batches.count >= PipelinedSegmentRead.depth && !abandoned { condition.wait() }
        guard !abandoned else { return }
        batches.append(batch)
        condition.broadcast()
    }

    /// The next batch, in order; nil once the segment is read.
    func next() -> [LogRecordCodec.Entry]? {
        condition.lock()
        defer { condition.unlock() }
        while batches.isEmpty && outcome == nil { condition.wait() }
        guard !batches.isEmpty else { return nil }
        condition.broadcast()
        return batches.removeFirst()
    }

    /// How the segment ended (its entries were handed out by ``next()``), after ``next()``
    /// returned nil.
    func result() throws -> LogSegmentReader.Result {
        condition.lock()
        defer { condition.unlock() }
        while outcome == nil { condition.wait() }
        return try outcome!.get()
    }

    /// The caller stops reading (an error): the decoder runs to the end without keeping
    /// anything.
    func abandon() {
        condition.lock()
        abandoned = true
        batches = []
        condition.broadcast()
        condition.unlock()
    }
}

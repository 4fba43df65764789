import Foundation
import Logging
import Synchronization

/// What open realtime sessions asked to be written when they end (their on-disconnect
/// writes), kept in an append-only file of the data directory so that they still run after a
/// crash or restart that ends every session without the server seeing it.
///
/// It is a small key-value journal: each entry is an opaque payload under a key (the server
/// uses one per session and namespace). `put` and `remove` append a record and make it durable
/// before they return; opening replays the file (a torn last record, from a crash in the middle
/// of an append, is cut away) and hands back the entries still there; the file is rewritten
/// with only the live entries when it opens and whenever it has grown four times past them.
///
/// Record: payload length (u32), CRC-32C of the payload (u32), then the payload: kind (u8: 1
/// put, 2 remove), key (u32 length + UTF-8), and for a put the value (u32 length + bytes).
/// The file starts with `HEARTHSJ` and the format version (u32).
public final class SessionJournal: Sendable {
    struct State {
        var descriptor: Int32
        var live: [String: [UInt8]]
        var fileBytes: Int
        var liveBytes: Int
    }

    /// The journal's file; nil for a server without a data directory (nothing is kept).
    let path: String?
    let state: Mutex<State>

    static let magic: [UInt8] = Array("HEARTHSJ".utf8)
    static let headerSize = 12
    static let putRecord: UInt8 = 1
    static let removeRecord: UInt8 = 2
    /// The file is rewritten once it is this much larger than its live entries (and at least
    /// `compactAfterBytes`).
    static let compactAfterBytes = 1 << 20

    init(path: String?, state: State) {
        self.path = path
        self.state = Mutex(state)
    }

    /// A journal that keeps nothing on disk (a server without a data directory).
    public static func memoryOnly() -> SessionJournal {
        SessionJournal(path: nil, state: State(descriptor: -1, live: [:], fileBytes: 0, liveBytes: 0))
    }

    /// Opens (or creates) the journal of the data directory `directory`; returns it and the
    /// entries left by the server's previous run. A nil directory keeps nothing.
    public static func open(directory: String?, logger: Logger) throws -> (SessionJournal, left: [String: [UInt8]]) {
        guard let directory else { return (.memoryOnly(), [:]) }
        let path = directory + "/" + StorageFormat.sessionJournalFileName
        var live: [String: [UInt8]] = [:]
        if FileIO.exists(path) {
            let bytes = try FileIO.read(path)
            let (entries, end) = replay(bytes)
            live = entries
            if end < bytes.count {
                logger.notice(
                    "session journal: a torn record at its end was cut away",
                    metadata: ["file": "\(path)", "offset": "\(end)", "bytes": "\(bytes.count - end)"])
            }
        }
        let image = encode(live)
        try FileIO.writeAtomically(image, to: path, directory: directory)
        let descriptor = try FileIO.openForAppend(path)
        let state = State(descriptor: descriptor, live: live, fileBytes: image.count, liveBytes: image.count)
        return (SessionJournal(path: path, state: state), live)
    }

    /// The entries in `bytes`, and where the valid records end.
    static func replay(_ bytes: [UInt8]) -> (live: [String: [UInt8]], end: Int) {
        bytes.withUnsafeBytes { buffer in
            var live: [String: [UInt8]] = [:]
            guard buffer.count >= headerSize, Array(buffer[0..<magic.count]) == magic else { return ([:], 0) }
            var reader = ByteReader(buffer)
            reader.offset = headerSize
            var end = headerSize
            while reader.remaining > 0 {
                do {
                    let length = Int(try reader.u32())
                    let checksum = try reader.u32()
                    let payload = try reader.take(length)
                    guard CRC32C.checksum(payload) == checksum else { break }
                    var record = ByteReader(payload)
                    let kind = try record.u8()
                    let key = String(decoding: try record.blob(), as: UTF8.self)
                    switch kind {
                    case putRecord: live[key] = Array(try record.blob())
                    case removeRecord: live[key] = nil
                    default: return (live, end)
                    }
                    end = reader.offset
                } catch {
                    break
                }
            }
            return (live, end)
        }
    }

    /// A whole file holding `live`.
    static func encode(_ live: [String: [UInt8]]) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(magic)
        writer.u32(StorageFormat.version)
        for (key, value) in live.sorted(by: { $0.key < $1.key }) { writer.raw(record(key: key, value: value)) }
        return writer.bytes
    }

    /// The size of a put record of `value` under `key`.
    static func putRecordSize(key: String, value: [UInt8]) -> Int {
        4 + 4 + 1 + 4 + key.utf8.count + 4 + value.count
    }

    /// A framed record: a put of `value` under `key`, or a remove when `value` is nil.
    static func record(key: String, value: [UInt8]?) -> [UInt8] {
        var payload = ByteWriter()
        payload.u8(value == nil ? removeRecord : putRecord)
        payload.blob(Array(key.utf8))
        if let value { payload.blob(value) }
        var writer = ByteWriter()
        writer.u32(UInt32(payload.bytes.count))
        writer.u32(CRC32C.checksum(payload.bytes))
        writer.raw(payload.bytes)
        return writer.bytes
    }

    /// Keeps `value` under `key` (replacing what was there); durable when this returns.
    public func put(_ key: String, _ value: [UInt8]) throws {
        try append(key: key, value: value)
    }

    /// Forgets `key`; durable when this returns.
    public func remove(_ key: String) throws {
        try append(key: key, value: nil)
    }

    func append(key: String, value: [UInt8]?) throws {
        guard let path else { return }
        try state.withLock { state in
            if value == nil, state.live[key] == nil { return }
            let bytes = SessionJournal.record(key: key, value: value)
            try bytes.withUnsafeBytes { try FileIO.writeAll(state.descriptor, $0, path: path) }
            try FileIO.syncData(state.descriptor, path: path)
            state.fileBytes += bytes.count
            if let previous = state.live[key] { state.liveBytes -= SessionJournal.putRecordSize(key: key, value: previous) }
            if value != nil { state.liveBytes += bytes.count }
            state.live[key] = value
            if state.fileBytes > SessionJournal.compactAfterBytes, state.fileBytes > 4 * state.liveBytes {
                try compact(&state, path: path)
            }
        }
    }

    /// Rewrites the file with only the live entries.
    func compact(_ state: inout State, path: String) throws {
        let image = SessionJournal.encode(state.live)
        try FileIO.writeAtomically(image, to: path, directory: FileIO.parentDirectory(of: path))
        let descriptor = try FileIO.openForAppend(path)
        FileIO.closeDescriptor(state.descriptor)
        state.descriptor = descriptor
        state.fileBytes = image.count
        state.liveBytes = image.count
    }

    /// The entries kept now.
    public var entries: [String: [UInt8]] { state.withLock { $0.live } }

    deinit {
        let descriptor = state.withLock { $0.descriptor }
        if descriptor >= 0 { FileIO.closeDescriptor(descriptor) }
    }
}

#if canImport(Glibc)
import Glibc
import Foundation

/// A load client for streaming: opens `streams` SSE connections to `/feed.json` on
/// 127.0.0.1:`port` (or, with `realtime`, WebSockets that each listen to `/feed` over the
/// realtime protocol), writes `/feed/value` `rate` times a second for `seconds` from another
/// thread (the data carries the send time), and measures delivery latency on the first
/// `probes` streams (the others are only drained). One poll loop, so that the client costs
/// far less than the server it measures. Prints one JSON line.
func fanOutBenchmark(
    port: UInt16, streams: Int, seconds: Double, rate: Int, probes: Int = 50, realtime: Bool = false, writePort: UInt16? = nil
) throws {
    let request = realtime
        ? webSocketUpgrade(port: port)
        : "GET /feed.json HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    /// Realtime sockets whose upgrade answer has been read (the listen is sent then).
    var upgraded: Set<Int32> = []
    var sockets: [Int32] = []
    var buffers: [Int32: [UInt8]] = [:]
    var opened: Set<Int32> = []
    for index in 0..<streams {
        let fd = fanOutConnect(port: port)
        fanOutSend(fd, request)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        sockets.append(fd)
        if index < probes { buffers[fd] = [] }
    }
    var latencies: [Double] = []
    var received = 0
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    var polled = sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }

    func drain(until deadline: Double, stopWhenOpened: Bool) {
        while Date().timeIntervalSince1970 < deadline {
            if stopWhenOpened && opened.count == streams { return }
            let ready = poll(&polled, nfds_t(polled.count), 10)
            guard ready > 0 else { continue }
            let now = fanOutNow()
            for position in polled.indices where polled[position].revents != 0 {
                let fd = polled[position].fd
                polled[position].revents = 0
                while true {
                    let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    guard count > 0 else { break }
                    received += count
                    if !opened.contains(fd) {
                        opened.insert(fd)
                        if realtime {
                            // The upgrade is answered: listen (the hello follows the 101).
                            sendWebSocketText(fd, #"{"t":"d","d":{"r":1,"a":"q","b":{"p":"/feed","h":""}}}"#)
                        }
                    }
                    guard buffers[fd] != nil else { continue }
                    buffers[fd]!.append(contentsOf: chunk[0..<count])
                    var buffer = buffers[fd]!
                    if realtime {
                        if !upgraded.contains(fd) {
                            guard let end = frameEnd(buffer, separator: [13, 10, 13, 10]) else { continue }
                            buffer.removeFirst(end + 4)
                            upgraded.insert(fd)
                        }
                        // Each push of the value carries "sent":<ns>.
                        for payload in takeWebSocketFrames(from: &buffer) {
                            if let sent = sentTime(in: Array(payload)) { latencies.append(Double(now - sent) / 1e6) }
                        }
                    } else {
                        // Complete frames end with a blank line; each data frame carries "sent":<ns>.
                        while let end = frameEnd(buffer) {
                            let frame = buffer[..<end]
                            if let sent = sentTime(in: Array(frame)) { latencies.append(Double(now - sent) / 1e6) }
                            buffer.removeFirst(end + 2)
                        }
                    }
                    buffers[fd] = buffer
                }
            }
        }
    }

    let connectStart = Date().timeIntervalSince1970
    drain(until: connectStart + 60, stopWhenOpened: true)
    let connectSeconds = Date().timeIntervalSince1970 - connectStart

    // The writer: its own thread and connection, PUTs at a fixed rate.
    let writes = ManagedCounter()
    let writer = Thread {
        // The writes may go to another node than the streams (a PostgreSQL writer and a follower).
        let fd = fanOutConnect(port: writePort ?? port)
        let interval = 1.0 / Double(rate)
        let end = Date().timeIntervalSince1970 + seconds
        var next = Date().timeIntervalSince1970
        var response = [UInt8](repeating: 0, count: 4096)
        while Date().timeIntervalSince1970 < end {
            let body = "{\"sent\":\(fanOutNow())}"
            fanOutSend(fd, "PUT /feed/value.json?print=silent HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
            var got: [UInt8] = []
            while frameEnd(got, separator: [13, 10, 13, 10]) == nil {
                let count = response.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                got += response[0..<count]
            }
            writes.increment()
            next += interval
            let pause = next - Date().timeIntervalSince1970
            if pause > 0 { usleep(useconds_t(pause * 1e6)) }
        }
        close(fd)
        writes.finish()
    }
    // One second with the streams open and idle (the server settles), then the writes.
    drain(until: Date().timeIntervalSince1970 + 1, stopWhenOpened: false)
    writer.start()
    drain(until: Date().timeIntervalSince1970 + seconds + 1.5, stopWhenOpened: false)
    while !writes.finished { usleep(1000) }
    for fd in sockets { close(fd) }
    latencies.sort()
    func percentile(_ fraction: Double) -> Double {
        latencies.isEmpty ? -1 : latencies[min(latencies.count - 1, Int(fraction * Double(latencies.count)))]
    }
    emit([
        "streams": streams, "connect_seconds": connectSeconds, "writes": writes.value,
        "probe_events": latencies.count, "probe_events_expected": writes.value * min(streams, probes),
        "p50_ms": percentile(0.5), "p99_ms": percentile(0.99), "max_ms": latencies.last ?? -1, "bytes_received": received,
    ])
}

func fanOutConnect(port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    precondition(result == 0, "connect failed: \(errno)")
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    return fd
}
/// The HTTP request that opens a realtime protocol WebSocket on the default namespace.
func webSocketUpgrade(port: UInt16) -> String {
    "GET /.ws?v=5&ns=default HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: aGVhcnRoLWJlbmNoLWtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

/// Sends `text` as one client text frame (masked with a zero key, so the payload goes as it
/// is); waits out a full socket buffer.
func sendWebSocketText(_ fd: Int32, _ text: String) {
    let message = Array(text.utf8)
    var frame: [UInt8] = [0x81]
    if message.count < 126 {
        frame.append(0x80 | UInt8(message.count))
    } else {
        frame.append(0x80 | 126)
        frame.append(UInt8(message.count >> 8))
        frame.append(UInt8(message.count & 0xFF))
    }
    frame.append(contentsOf: [0, 0, 0, 0])
    frame.append(contentsOf: message)
    var sent = 0
    while sent < frame.count {
        let count = frame[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if count > 0 { sent += count } else { precondition(errno == EAGAIN, "write failed: \(errno)"); usleep(50) }
    }
}

/// Removes the complete server frames at the start of `buffer` (unmasked: opcode byte,
/// length in 7, 16 or 64 bits, payload); returns the payloads of the text frames.
func takeWebSocketFrames(from buffer: inout [UInt8]) -> [ArraySlice<UInt8>] {
    var payloads: [ArraySlice<UInt8>] = []
    var offset = 0
    while buffer.count - offset >= 2 {
        var length = Int(buffer[offset + 1] & 0x7F)
        var header = 2
        if length == 126 {
            guard buffer.count - offset >= 4 else { break }
            length = Int(buffer[offset + 2]) << 8 | Int(buffer[offset + 3])
            header = 4
        } else if length == 127 {
            guard buffer.count - offset >= 10 else { break }
            length = (0..<8).reduce(0) { $0 << 8 | Int(buffer[offset + 2 + $1]) }
            header = 10
        }
        guard buffer.count - offset >= header + length else { break }
        if buffer[offset] & 0x0F == 1 { payloads.append(buffer[(offset + header)..<(offset + header + length)]) }
        offset += header + length
    }
    let taken = Array(payloads.map { Array($0) })
    buffer.removeFirst(offset)
    return taken.map { $0[...] }
}

func fanOutSend(_ fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    var sent = 0
    while sent < bytes.count {
        let count = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        precondition(count > 0, "write failed")
        sent += count
    }
}
func fanOutNow() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
}
/// The end of the first frame (the index of a blank line) in `bytes`.
func frameEnd(_ bytes: [UInt8], separator: [UInt8] = [10, 10]) -> Int? {
    guard bytes.count >= separator.count else { return nil }
    var index = 0
    while index + separator.count <= bytes.count {
        if bytes[index] == separator[0] && bytes[index..<(index + separator.count)].elementsEqual(separator) { return index }
        index += 1
    }
    return nil
}

/// The number after `"sent":` in a frame.
func sentTime(in frame: [UInt8]) -> Int64? {
    let marker = Array("\"sent\":".utf8)
    guard frame.count > marker.count else { return nil }
    for start in 0...(frame.count - marker.count) where frame[start..<(start + marker.count)].elementsEqual(marker) {
        var value: Int64 = 0
        var index = start + marker.count
        while index < frame.count, frame[index] >= 48, frame[index] <= 57 {
            value = value * 10 + Int64(frame[index] - 48)
            index += 1
        }
        return value
    }
    return nil
}

/// A counter shared with the writer thread.
final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var done = false
    func increment() { lock.lock(); count += 1; lock.unlock() }
    func finish() { lock.lock(); done = true; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
    var finished: Bool { lock.lock(); defer { lock.unlock() }; return done }
}
#endif

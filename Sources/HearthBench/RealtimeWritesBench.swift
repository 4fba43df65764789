#if canImport(Glibc)
import Glibc
import Foundation

/// A load client for the realtime protocol's writes: opens `connections` WebSockets to
/// `/.ws?v=5&ns=default` on 127.0.0.1:`port` and, on each, keeps `window` sets
/// (`{"a":"p"}` of `record` at a new key, as the SDKs' `push()` does) outstanding for
/// `seconds`, pipelined as the SDKs pipeline them. Counts the `ok` replies and times each from
/// send to reply. One poll loop and raw frames (client frames masked with a zero key), so the
/// client costs far less than the server. Prints one JSON line.
func realtimeWritesBenchmark(port: UInt16, connections: Int, window: Int, seconds: Double, record: String)
    throws
{
    final class Connection {
        let fd: Int32
        var buffer: [UInt8] = []
        var nextRequest: Int64 = 1
        /// Send time (ns) of each outstanding request, by number.
        var outstanding: [Int64: Int64] = [:]
        var greeted = false
        init(fd: Int32) { self.fd = fd }
    }
    var all: [Connection] = []
    for _ in 0..<connections {
        let fd = fanOutConnect(port: port)
        fanOutSend(fd, webSocketUpgrade(port: port))
        all.append(Connection(fd: fd))
    }
    // The upgrade answers, read blocking (before the sockets go non-blocking).
    for connection in all {
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !head.suffix(4).elementsEqual([13, 10, 13, 10]) {
            precondition(read(connection.fd, &byte, 1) == 1, "the upgrade was not answered")
            head.append(byte)
        }
        precondition(String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101"), "the upgrade was refused")
        _ = fcntl(connection.fd, F_SETFL, fcntl(connection.fd, F_GETFL) | O_NONBLOCK)
    }

    var key = 0
    func send(_ connection: Connection) {
        let number = connection.nextRequest
        connection.nextRequest += 1
        key += 1
        sendWebSocketText(connection.fd, #"{"t":"d","d":{"r":\#(number),"a":"p","b":{"p":"/bench/k\#(key)","d":\#(record)}}}"#)
        connection.outstanding[number] = fanOutNow()
    }

    var latencies: [Double] = []
    var completed = 0
    var failed = 0
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    var polled = all.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
    let byDescriptor = Dictionary(uniqueKeysWithValues: all.map { ($0.fd, $0) })
    let start = Date().timeIntervalSince1970
    var measuredFrom = start + min(1, seconds / 5)  // a short warm-up is not counted
    var measuring = false
    let end = start + seconds + (measuredFrom - start)

    while Date().timeIntervalSince1970 < end {
        let now = Date().timeIntervalSince1970
        if !measuring && now >= measuredFrom {
            measuring = true
            measuredFrom = now
            latencies.removeAll(keepingCapacity: true)
            completed = 0
        }
        guard poll(&polled, nfds_t(polled.count), 10) > 0 else { continue }
        for position in polled.indices where polled[position].revents != 0 {
            polled[position].revents = 0
            let connection = byDescriptor[polled[position].fd]!
            while true {
                let count = chunk.withUnsafeMutableBytes { read(connection.fd, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                connection.buffer.append(contentsOf: chunk[0..<count])
            }
            for payload in takeWebSocketFrames(from: &connection.buffer) {
                if !connection.greeted {
                    connection.greeted = true  // the hello
                    for _ in 0..<window { send(connection) }
                    continue
                }
                guard let number = replyNumber(in: payload), let sent = connection.outstanding.removeValue(forKey: number)
                else { continue }
                if payload.firstRange(of: Array(#""s":"ok""#.utf8)) != nil {
                    if measuring {
                        completed += 1
                        latencies.append(Double(fanOutNow() - sent) / 1e6)
                    }
                } else {
                    failed += 1
                }
                send(connection)
            }
        }
    }
    let elapsed = Date().timeIntervalSince1970 - measuredFrom
    for connection in all { close(connection.fd) }
    latencies.sort()
    func percentile(_ fraction: Double) -> Double {
        latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * fraction))]
    }
    emit([
        "connections": connections, "window": window, "seconds": elapsed, "writes": completed, "failed": failed,
        "writes_per_s": Double(completed) / elapsed, "p50_ms": percentile(0.5), "p99_ms": percentile(0.99),
        "keys_written": key,
    ])
}

/// The request number of a reply: the digits after `"r":`.
func replyNumber(in payload: ArraySlice<UInt8>) -> Int64? {
    guard let range = payload.firstRange(of: Array(#""r":"#.utf8)) else { return nil }
    var value: Int64 = 0
    var index = range.upperBound
    var digits = 0
    while index < payload.endIndex, payload[index] >= 48, payload[index] <= 57 {
        value = value * 10 + Int64(payload[index] - 48)
        index += 1
        digits += 1
    }
    return digits > 0 ? value : nil
}
#endif

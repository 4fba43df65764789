// MARK: - Strings and numbers

extension JSONParser {
    /// Bytes that end the fast string scan: `"`, `\` and control characters.
    static let stringStop: [Bool] = (0..<256).map { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }

    /// Reads a JSON string starting at the opening quote.
    mutating func parseString() throws(DataError) -> String {
        position += 1  // "
        let start = position
        let stop = JSONParser.stringStop
        try stop.withUnsafeBufferPointer { (table) throws(DataError) in
            while position < count && !table[Int(base[position])] { position += 1 }
        }
        guard position < count else { throw DataError.unparseable }
        if base[position] == UInt8(ascii: "\"") {
            let length = position - start
            guard length <= options.maxStringBytes else { throw JSONParser.stringTooLong }
            position += 1
            guard let string = String(validating: UnsafeBufferPointer(start: base + start, count: length), as: UTF8.self)
            else {
                throw DataError.invalidData("Invalid data; string is not valid UTF-8.")
            }
            return string
        }
        return try parseEscapedString(start: start)
    }

    static let stringTooLong = DataError.invalidData("Invalid data; string exceeds the maximum size of 10 MB.")

    /// The slow path for strings with escapes.
    mutating func parseEscapedString(start: Int) throws(DataError) -> String {
        var bytes = [UInt8](UnsafeBufferPointer(start: base + start, count: position - start))
        while true {
            guard position < count else { throw DataError.unparseable }
            let byte = base[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                guard bytes.count <= options.maxStringBytes else { throw JSONParser.stringTooLong }
                guard let string = String(validating: bytes, as: UTF8.self) else {
                    throw DataError.invalidData("Invalid data; string is not valid UTF-8.")
                }
                return string
            case UInt8(ascii: "\\"):
                position += 1
                guard position < count else { throw DataError.unparseable }
                let escape = base[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""): bytes.append(0x22)
                case UInt8(ascii: "\\"): bytes.append(0x5C)
                case UInt8(ascii: "/"): bytes.append(0x2F)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard position + 1 < count, base[position] == UInt8(ascii: "\\"),
                            base[position + 1] == UInt8(ascii: "u")
                        else { throw DataError.invalidData("Invalid data; unpaired surrogate in string.") }
                        position += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else {
                            throw DataError.invalidData("Invalid data; unpaired surrogate in string.")
                        }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw DataError.invalidData("Invalid data; unpaired surrogate in string.")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw DataError.unparseable }
                    bytes.append(contentsOf: UTF8.encode(unicode)!)
                default:
                    throw DataError.unparseable
                }
            default:
                guard byte >= 0x20 else { throw DataError.unparseable }
                bytes.append(byte)
                position += 1
            }
        }
    }

    mutating func parseHex4() throws(DataError) -> UInt32 {
        guard position + 4 <= count else { throw DataError.unparseable }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = base[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw DataError.unparseable
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    @inline(__always)
    func isDigit(_ offset: Int) -> Bool {
        offset < count && base[offset] &- UInt8(ascii: "0") < 10
    }

    /// Reads a number: an `Int64` when it has no fraction or exponent and fits, else a `Double`.
    /// NaN and infinities cannot be written in JSON, and overflowing doubles are refused.
    mutating func parseNumber() throws(DataError) -> Node {
        let start = position
        var negative = false
        if base[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        guard isDigit(position) else { throw DataError.unparseable }
        var magnitude: UInt64 = 0
        var overflow = false
        if base[position] == UInt8(ascii: "0") {
            position += 1
            if isDigit(position) { throw DataError.unparseable }  // leading zero
        } else {
            while isDigit(position) {
                let digit = UInt64(base[position] &- UInt8(ascii: "0"))
                let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(digit)
                overflow = overflow || o1 || o2
                magnitude = sum
                position += 1
            }
        }
        var isInteger = true
        if position < count && base[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard isDigit(position) else { throw DataError.unparseable }
            while isDigit(position) { position += 1 }
        }
        if position < count && (base[position] | 0x20) == UInt8(ascii: "e") {
            isInteger = false
            position += 1
            if position < count && (base[position] == UInt8(ascii: "+") || base[position] == UInt8(ascii: "-")) {
                position += 1
            }
            guard isDigit(position) else { throw DataError.unparseable }
            while isDigit(position) { position += 1 }
        }
        if isInteger && !overflow {
            if negative {
                if magnitude <= UInt64(Int64.max) + 1 {
                    return .int(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
                }
            } else if magnitude <= UInt64(Int64.max) {
                return .int(Int64(magnitude))
            }
        }
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: position - start), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw DataError.invalidData("Invalid data; number is out of range.")
        }
        return .double(value)
    }
}

// MARK: - Strings and numbers

extension JSONParser {

    /// Reads a JSON string starting at the opening quote.
    mutating func parseString() throws(DataError) -> String {
        let (start, length, ascii) = try scanPlainString()
        guard length >= 0 else { return try parseEscapedString(start: start) }
        guard ascii || UTF8Validation.isValid(UnsafeRawBufferPointer(start: base + start, count: length)) else {
            throw JSONParser.invalidUTF8
        }
        return string(at: start, length: length, isASCII: ascii)
    }

    /// A string from `length` bytes of the document at `start`, known to be valid UTF-8. Strings
    /// of up to 15 bytes are built in place as small strings (see ``StringLayout``).
    @inline(__always)
    func string(at start: Int, length: Int, isASCII: Bool) -> String {
        if length <= StringLayout.capacity && StringLayout.isAvailable {
            return StringLayout.make(base + start, count: length, readable: count - start, isASCII: isASCII)
        }
        return String(decoding: UnsafeRawBufferPointer(start: base + start, count: length), as: UTF8.self)
    }

    static let invalidUTF8 = DataError.invalidData("Invalid data; string is not valid UTF-8.")

    /// Reads an object key: a ``ChildKey`` when it is a valid child name, else its text.
    mutating func parseKeyText() throws(DataError) -> (key: ChildKey?, text: String) {
        let (start, length, ascii) = try scanPlainString()
        let text: String
        if length >= 0 && length <= StringLayout.capacity && ascii && keyCache.isEnabled {
            // A short ASCII name: look it up by its words; make, check and cache it once.
            let (low, payload) = StringLayout.load(base + start, count: length, readable: count - start)
            let high = StringLayout.high(payload, count: length, isASCII: true)
            if let key = keyCache.lookup(low: low, high: high) { return (key, "") }
            let bytes = UnsafeRawBufferPointer(start: base + start, count: length)
            text = unsafeBitCast((low, high), to: String.self)
            if KeyValidator.isValid(bytes) {
                let key = ChildKey(string: text, utf8: bytes, isASCII: true, isPlain: true)
                keyCache.insert(low: low, high: high, key: key)
                return (key, "")
            }
        } else if length >= 0 {
            let bytes = UnsafeRawBufferPointer(start: base + start, count: length)
            guard ascii || UTF8Validation.isValid(bytes) else { throw JSONParser.invalidUTF8 }
            if KeyValidator.isValid(bytes) {
                // A string without escapes holds no quote, backslash or control character.
                // Made straight into the key: no second reference to retain and release.
                return (ChildKey(string: string(at: start, length: length, isASCII: ascii), utf8: bytes, isASCII: ascii, isPlain: true), "")
            }
            text = string(at: start, length: length, isASCII: ascii)
        } else {
            text = try parseEscapedString(start: start)
        }
        return (KeyValidator.isValid(text) ? ChildKey(text) : nil, text)
    }

    /// Scans a string from its opening quote. For a string without escapes, returns its bytes'
    /// start and length, whether it is all ASCII, and moves past the closing quote. For a string
    /// with escapes, returns length -1 and leaves `position` at the first backslash.
    @inline(__always)
    mutating func scanPlainString() throws(DataError) -> (start: Int, length: Int, isASCII: Bool) {
        position += 1  // "
        let start = position
        var highBits: UInt64 = 0
        // Eight bytes at a time while none is a quote, a backslash or a control character.
        while position + 8 <= count {
            let word = UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self)
            if JSONWriter.wordNeedsEscape(word) { break }
            highBits |= word
            position += 8
        }
        while position < count {
            let byte = base[position]
            if byte < 0x20 || byte == 0x22 || byte == 0x5C { break }
            highBits |= UInt64(byte)
            position += 1
        }
        guard position < count else { throw DataError.unparseable }
        guard base[position] == UInt8(ascii: "\"") else {
            if base[position] < 0x20 { throw DataError.unparseable }
            return (start, -1, false)
        }
        let length = position - start
        guard length <= options.maxStringBytes else { throw JSONParser.stringTooLong }
        position += 1
        return (start, length, highBits & 0x8080_8080_8080_8080 == 0)
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
                let valid = bytes.withUnsafeBytes { UTF8Validation.isValid($0) }
                guard valid else { throw JSONParser.invalidUTF8 }
                return String(decoding: bytes, as: UTF8.self)
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

    /// Appends one decimal digit (an ASCII byte) to `value`, noting overflow.
    @inline(__always)
    static func accumulate(_ digit: UInt8, into value: inout UInt64, overflow: inout Bool) {
        let (times10, o1) = value.multipliedReportingOverflow(by: 10)
        let (sum, o2) = times10.addingReportingOverflow(UInt64(digit &- UInt8(ascii: "0")))
        overflow = overflow || o1 || o2
        value = sum
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
                JSONParser.accumulate(base[position], into: &magnitude, overflow: &overflow)
                position += 1
            }
        }
        var isInteger = true
        // For the fast path below: the digits as one integer (while it fits) and the power of
        // ten to apply to it.
        var significand = magnitude
        var decimalExponent = 0
        if position < count && base[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard isDigit(position) else { throw DataError.unparseable }
            while isDigit(position) {
                JSONParser.accumulate(base[position], into: &significand, overflow: &overflow)
                decimalExponent -= 1
                position += 1
            }
        }
        if position < count && (base[position] | 0x20) == UInt8(ascii: "e") {
            isInteger = false
            position += 1
            var exponentNegative = false
            if position < count && (base[position] == UInt8(ascii: "+") || base[position] == UInt8(ascii: "-")) {
                exponentNegative = base[position] == UInt8(ascii: "-")
                position += 1
            }
            guard isDigit(position) else { throw DataError.unparseable }
            var exponent = 0
            while isDigit(position) {
                if exponent < 100_000 { exponent = exponent * 10 + Int(base[position] &- UInt8(ascii: "0")) }
                position += 1
            }
            decimalExponent += exponentNegative ? -exponent : exponent
        }
        if !isInteger && !overflow && significand <= 1 << 53 && decimalExponent >= -22 && decimalExponent <= 22 {
            // Clinger's fast path: the significand and 10^|e| are exact doubles, so one
            // correctly rounded multiplication or division gives the correctly rounded value.
            let power = JSONParser.exactPowersOfTen[abs(decimalExponent)]
            let value = decimalExponent < 0 ? Double(significand) / power : Double(significand) * power
            return .double(negative ? -value : value)
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

extension JSONParser {
    /// 10^0 ... 10^22: the powers of ten that are exact doubles.
    static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]
}

/// A UTF-8 validator (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
enum UTF8Validation {
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            let length: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return false
            }
            guard index + length <= count else { return false }
            let second = bytes[index + 1]
            guard second >= low && second <= high else { return false }
            for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return false }
            index += length
        }
        return true
    }
}

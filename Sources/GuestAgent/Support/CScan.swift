import CGLib
import Glibc

/// glibc's `sscanf`, for the /proc and /sys line formats that qemu-ga reads
/// with it. Calling the same function keeps every corner case of those
/// formats as qemu-ga has them: signs, `0x` prefixes, values too large for
/// the C type, and stopping at the first character that does not fit.
enum CScan {
    /// The C type a conversion stores into. One field per conversion of the
    /// format (at most 24), in order, `%n` included and `%*` conversions
    /// left out.
    enum Field {
        /// `%d`: int.
        case int
        /// `%ld`, `%lld`: long.
        case long
        /// `%u`, `%x`, `%X`: unsigned int.
        case unsignedInt
        /// `%lu`, `%lx`: unsigned long.
        case unsignedLong
        /// `%hhx`: unsigned char.
        case unsignedChar
        /// `%lf`: double.
        case double
        /// `%s`, `%32s`: a string (its buffer always holds the whole input).
        case string
        /// `%n`: the number of characters consumed so far (an int).
        case position
    }

    struct Result {
        /// What sscanf returned: the number of conversions assigned, or -1
        /// (EOF) when the input ended before the first one.
        let count: Int32
        fileprivate let values: [Value]

        fileprivate enum Value {
            case signed(Int64)
            case unsigned(UInt64)
            case double(Double)
            case string(String)
        }

        /// A signed field (`int`, `long`, `%n`); 0 when it was not assigned.
        func signed(_ index: Int) -> Int64 {
            if case .signed(let value) = values[index] { return value }
            preconditionFailure("field \(index) is not signed")
        }

        /// An unsigned field; 0 when it was not assigned.
        func unsigned(_ index: Int) -> UInt64 {
            if case .unsigned(let value) = values[index] { return value }
            preconditionFailure("field \(index) is not unsigned")
        }

        /// A double field; 0 when it was not assigned.
        func double(_ index: Int) -> Double {
            if case .double(let value) = values[index] { return value }
            preconditionFailure("field \(index) is not a double")
        }

        /// A string field; empty when it was not assigned.
        func string(_ index: Int) -> String {
            if case .string(let value) = values[index] { return value }
            preconditionFailure("field \(index) is not a string")
        }
    }

    private static let maximumFields = 24

    /// `sscanf(input, format, fields...)`. The input ends at its first NUL,
    /// as a C string does.
    static func scan(_ input: some StringProtocol, _ format: String, _ fields: [Field]) -> Result {
        var input = String(input)
        return input.withUTF8 { scan($0, format, fields) }
    }

    /// The same for the bytes of a line.
    static func scan(_ input: some Collection<UInt8>, _ format: String, _ fields: [Field]) -> Result {
        precondition(fields.count <= maximumFields, "too many sscanf fields")
        // One buffer of 8-byte aligned slots: the input as a C string, then
        // one slot per field, input-sized for strings.
        let inputSize = input.count + 1
        let stringSlot = (inputSize + 7) / 8 * 8
        let stringCount = fields.lazy.filter { $0 == .string }.count
        let size = stringSlot + 8 * (fields.count - stringCount) + stringSlot * stringCount
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        UnsafeMutableRawBufferPointer(start: buffer, count: inputSize).copyBytes(from: input)

        var outputs = [UnsafeMutableRawPointer?](repeating: nil, count: maximumFields)
        var next = buffer + stringSlot
        for (index, field) in fields.enumerated() {
            outputs[index] = next
            next += field == .string ? stringSlot : 8
        }
        let count = outputs.withUnsafeBufferPointer { pointers in
            cglib_sscanf(buffer.assumingMemoryBound(to: CChar.self), format, pointers.baseAddress)
        }
        let values = zip(fields, outputs).map { field, output -> Result.Value in
            let output = output!
            return switch field {
            case .int, .position: .signed(Int64(output.load(as: Int32.self)))
            case .long: .signed(output.load(as: Int64.self))
            case .unsignedInt: .unsigned(UInt64(output.load(as: UInt32.self)))
            case .unsignedLong: .unsigned(output.load(as: UInt64.self))
            case .unsignedChar: .unsigned(UInt64(output.load(as: UInt8.self)))
            case .double: .double(output.load(as: Double.self))
            case .string: .string(String(cString: output.assumingMemoryBound(to: CChar.self)))
            }
        }
        return Result(count: count, values: values)
    }
}

/// C's own number conversions, where qemu-ga uses them rather than a scan:
/// the same leading-space, sign, overflow and stop-at-junk rules.
enum CNumber {
    /// `strtoul(text, NULL, base)`.
    static func unsignedLong(_ text: String, base: Int32 = 10) -> UInt {
        strtoul(text, nil, base)
    }

    /// `strtol(text, NULL, base)`.
    static func long(_ text: String, base: Int32 = 10) -> Int {
        strtol(text, nil, base)
    }

    /// `atoi(text)`.
    static func int(_ text: String) -> Int32 {
        atoi(text)
    }
}

import Glibc

/// glibc's `sscanf`, for the /proc and /sys line formats that qemu-ga reads
/// with it. Calling the same function keeps every corner case of those
/// formats as qemu-ga has them: signs, `0x` prefixes, values too large for
/// the C type, and stopping at the first character that does not fit.
enum CScan {
    /// The C type a conversion stores into. One field per conversion of the
    /// format, in order, `%n` included and `%*` conversions left out.
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

    /// `sscanf(input, format, fields...)`. The input ends at its first NUL,
    /// as a C string does.
    static func scan(_ input: some StringProtocol, _ format: String, _ fields: [Field]) -> Result {
        var inputBytes = Array(input.utf8)
        inputBytes.append(0)
        let buffers = fields.map { field in
            let size = field == .string ? inputBytes.count : 8
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
            buffer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            return buffer
        }
        defer { for buffer in buffers { buffer.deallocate() } }
        let count = inputBytes.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { text in
                withVaList(buffers.map { OpaquePointer($0) }) { vsscanf(text.baseAddress, format, $0) }
            }
        }
        let values = zip(fields, buffers).map { field, buffer -> Result.Value in
            switch field {
            case .int, .position: .signed(Int64(buffer.load(as: Int32.self)))
            case .long: .signed(buffer.load(as: Int64.self))
            case .unsignedInt: .unsigned(UInt64(buffer.load(as: UInt32.self)))
            case .unsignedLong: .unsigned(buffer.load(as: UInt64.self))
            case .unsignedChar: .unsigned(UInt64(buffer.load(as: UInt8.self)))
            case .double: .double(buffer.load(as: Double.self))
            case .string: .string(String(cString: buffer.assumingMemoryBound(to: CChar.self)))
            }
        }
        return Result(count: count, values: values)
    }
}

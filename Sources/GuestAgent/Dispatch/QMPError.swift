/// An error answered to the host as `{"error": {"class": ..., "desc": ...}}`.
package struct QMPError: Error, Equatable, Sendable {
    package enum ErrorClass: String, Sendable {
        case genericError = "GenericError"
        case commandNotFound = "CommandNotFound"
    }

    package var errorClass: ErrorClass
    package var desc: String

    package init(_ desc: String, class errorClass: ErrorClass = .genericError) {
        self.errorClass = errorClass
        self.desc = desc
    }
}

extension QMPError {
    // The texts of QEMU's argument visitor (qerror.h), which hosts match on.
    static func missingParameter(_ name: String) -> QMPError {
        QMPError("Parameter '\(name)' is missing")
    }

    static func unexpectedParameter(_ name: String) -> QMPError {
        QMPError("Parameter '\(name)' is unexpected")
    }

    static func invalidParameterType(_ name: String, expected: String) -> QMPError {
        QMPError("Invalid parameter type for '\(name)', expected: \(expected)")
    }

    static func invalidParameterValue(_ name: String, expects: String) -> QMPError {
        QMPError("Parameter '\(name)' expects \(expects)")
    }

    static func enumValueNotAccepted(_ name: String, value: String) -> QMPError {
        QMPError("Parameter '\(name)' does not accept value '\(value)'")
    }
}

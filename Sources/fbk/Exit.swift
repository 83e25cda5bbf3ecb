import ArgumentParser
import FoundationEssentials
import Glibc
import Seal
import Platform
import SQLite
import Format
import Index

/// fbk's exit codes, from sysexits(3) where one fits. Documented in README.md.
enum ExitStatus {
    static let usage: Int32 = 64          // EX_USAGE: bad arguments or configuration
    static let integrity: Int32 = 65      // EX_DATAERR: damaged, truncated or altered data
    static let noInput: Int32 = 66        // EX_NOINPUT: a file cannot be read
    static let software: Int32 = 70       // EX_SOFTWARE: a library failed unexpectedly
    static let cannotCreate: Int32 = 73   // EX_CANTCREAT: an output exists or cannot be made
    static let key: Int32 = 77            // EX_NOPERM: wrong key, passphrase or certificate
    static let partial: Int32 = 3         // snapshot stored, but some files or configured paths could not be read
    static let mirrorBehind: Int32 = 4    // snapshot stored, but a mirror is down (delivered by a later run)
    static let mirrorRefusing: Int32 = 5  // snapshot stored, but a mirror refuses uploads (misconfigured)
    static let beforeHookFailed: Int32 = 6 // a before hook failed: no snapshot taken
    static let warnings: Int32 = 1        // finished, with warnings (a hook after a good snapshot failed)
    static let localIO: Int32 = 74        // EX_IOERR: local disk trouble
    static let mirrors: Int32 = 75        // EX_TEMPFAIL: not enough mirrors stored the snapshot
    static let interrupted: Int32 = 130   // stopped by SIGINT/SIGTERM
}

/// Prints an error for people and turns it into an exit code.
func fail(_ error: Error) -> ExitCode {
    let message: String
    let status: Int32
    switch error {
    case let e as SealError:
        message = e.description
        switch e.code {
        case .invalidArgument: status = ExitStatus.usage
        case .malformedObject, .truncatedObject, .authenticationFailed, .corruptCompressedData:
            status = ExitStatus.integrity
        case .unreadableKeyMaterial, .io: status = ExitStatus.noInput
        case .wrongKey, .wrongPassphrase, .unusableCertificate: status = ExitStatus.key
        default: status = ExitStatus.software
        }
    case let e as StoreError where e.code == .underlying && e.cause != nil:
        // Another library's error under a target's boundary: its own kind decides.
        return fail(e.cause!)
    case let e as StoreError:
        message = e.message
        switch e.code {
        case .config: status = ExitStatus.usage
        case .index: status = ExitStatus.noInput
        case .io: status = ExitStatus.localIO
        case .mirrors: status = ExitStatus.mirrors
        case .integrity: status = ExitStatus.integrity
        case .interrupted: status = ExitStatus.interrupted
        default: status = ExitStatus.software
        }
    case let e as SQLiteError:
        // Index and the work database map theirs; one that escapes is still told apart.
        message = "index: \(e.description)"
        status = e.isDiskTrouble || e.isReadOnly ? ExitStatus.localIO : ExitStatus.noInput
    case let e as DurableFile.CreateError:
        message = e.error.message
        status = e.exists ? ExitStatus.cannotCreate : ExitStatus.localIO
    case let e as FormatError:
        message = e.description
        status = ExitStatus.integrity
    case let e as Passphrase.Unavailable:
        message = e.description
        status = ExitStatus.key
    case let e as CLIError:
        message = e.message
        status = e.status
    case is CocoaError, is POSIXError:
        // A file-system error from Foundation (FileManager, Data): local disk trouble, never "software".
        message = describe(error)
        status = ExitStatus.localIO
    default:
        message = "\(error)"
        status = ExitStatus.software
    }
    let safe = message.split(separator: "\n", omittingEmptySubsequences: false).map { String($0).terminalSafe }.joined(separator: "\n")
    writeStandardError("fbk: error: \(safe)\n")
    return ExitCode(status)
}

/// An error raised by the command line itself.
struct CLIError: Error {
    let message: String
    let status: Int32
}

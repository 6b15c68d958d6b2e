import CArguments
import GuestAgent
import Glibc

// The arguments as the kernel passed them: Swift's CommandLine needs /proc.
let arguments = (0..<Int(qga_argc())).map { String(cString: qga_argv()[$0]!) }
exit(GuestAgentDaemon.main(arguments: arguments, system: .current()))

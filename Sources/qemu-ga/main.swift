import GuestAgent
import Glibc

exit(GuestAgentDaemon.main(arguments: CommandLine.arguments))

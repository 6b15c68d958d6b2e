import GuestAgent

print("QEMU Guest Agent \(qgaInterfaceVersion)")

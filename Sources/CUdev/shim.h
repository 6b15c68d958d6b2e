#ifndef SWIFT_QEMU_GA_CUDEV_SHIM_H
#define SWIFT_QEMU_GA_CUDEV_SHIM_H

/* libudev, which qemu-ga asks for device nodes and udev properties
   (ID_SERIAL, DM_NAME) of block devices. */
#include <libudev.h>

#endif

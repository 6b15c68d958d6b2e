#ifndef SWIFT_QEMU_GA_CGLIB_SHIM_H
#define SWIFT_QEMU_GA_CGLIB_SHIM_H

#include <glib.h>
#include <glib-unix.h>

#endif

# swift-qemu-ga: build and install over Debian's qemu-guest-agent layout.
#
#   make run                        build, then start the agent on /tmp/qga.sock
#   make build                      the release binary, for glibc 2.28 and later
#   make deps                       apt-get install what the build and tests need
#   make install [DESTDIR=/tmp/x]   install the built binary and support files
#   make uninstall [DESTDIR=...]
#   make check                      every test: swift test, then the packaging test
#   make check-hermetic             swift test passes without the reference (the
#                                   NeedsSystem group skipped), and fails when required
#   make check-hot-functions        build, then fail if link/hot-functions.txt is stale
#   make footprint                  idle memory per mapping and section: ours, 7.2, the floor
#   make check-packaging            run Tests/packaging/test-install.sh
#   make check-portable             the binary's glibc/GLib floor and Debian 11 and 13
#                                   userlands (Tests/portability/run)
#   make check-vm                   the end-to-end test in a real VM (Tests/vm/run)
#   make check-libvirt              that VM under a private libvirtd, driven by virsh (Tests/vm/libvirt)
#   make check-systemd              our .deb installed over Debian's agent in a Debian 12
#                                   guest with systemd, then Debian's own package the same
#                                   way (Tests/vm/systemd-guest)
#   make check-robustness           sanitizers, soak and fuzzers, short forms
#                                   (Tests/robustness/run-ci)
#   make deb                        build, then .build-packages/swift-qemu-ga_<v>-1_amd64.deb
#   make rpm                        build, then .build-packages/swift-qemu-ga-<v>-1.x86_64.rpm
#                                   (config/packaging/build-packages; PACKAGES_DIR=... elsewhere)
#   make check-packages             build, then both packages and their checks
#                                   (Tests/packaging/test-packages.sh; not part of check)
#
# "install" never builds: run "make build" first (or point BINARY at a
# binary built elsewhere).  With DESTDIR set it needs no root.
#
# Only the binary follows PREFIX.  The unit, the udev rule and /etc/qemu are
# where Debian puts them, so that our files replace Debian's one for one.
# /etc/qemu/qemu-ga.conf is never installed or touched: the example goes to
# the documentation directory.  An existing /etc/qemu/fsfreeze-hook is kept.

PREFIX        ?= /usr
DESTDIR       ?=
BINARY        ?= .build/release/qemu-ga
SBINDIR       ?= $(PREFIX)/sbin
UNITDIR       ?= /lib/systemd/system
UDEVRULESDIR  ?= /lib/udev/rules.d
SYSCONFDIR    ?= /etc
DOCDIR        ?= $(PREFIX)/share/doc/swift-qemu-ga
SWIFT         ?= swift
INSTALL       ?= install

HOOK    = $(DESTDIR)$(SYSCONFDIR)/qemu/fsfreeze-hook
UNIT    = $(DESTDIR)$(UNITDIR)/qemu-guest-agent.service

.PHONY: all deps run build check-hermetic check-hot-functions check-floor check-portable check-systemd install uninstall check check-packaging check-vm check-libvirt check-robustness deps-packages deb rpm check-packages

all: build

# Debian packages: the libraries the agent links, then what the tests use
# (the reference /usr/sbin/qemu-ga, `ip`, mkfs.ext4 and chattr, readelf).
BUILD_PACKAGES = libglib2.0-dev libudev-dev pkg-config
TEST_PACKAGES  = qemu-guest-agent iproute2 e2fsprogs binutils python3
deps:
	@missing=$$(for package in $(BUILD_PACKAGES) $(TEST_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$package 2>/dev/null | grep -q '^install ok installed' || echo $$package; done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

run: build
	.build/release/qemu-ga -m unix-listen -p /tmp/qga.sock -t /tmp -v

# The release binary runs on glibc 2.28 and later (RHEL 8, Debian 10 and
# up): it is linked against Debian 11's glibc 2.31 (make-sysroot), and the
# few functions glibc 2.29 versioned anew are bound to their old versions by
# glibc-compat.c (keep WRAPPED and its list the same). Only the link of the
# qemu-ga product is affected; Tests/portability/check-floor proves it.
LINKDIR  = Sources/qemu-ga/link
SYSROOT ?= .build-sysroot/bullseye
COMPAT   = $(SYSROOT)/glibc-compat.o
WRAPPED  = exp exp2 log log2
PORTABLE = -Xswiftc -Xclang-linker -Xswiftc --sysroot=$(abspath $(SYSROOT)) \
	-Xlinker $(abspath $(COMPAT)) $(foreach name,$(WRAPPED),-Xlinker --wrap=$(name))

# SwiftPM does not see the release link's own inputs: when one changed, the
# binary goes, so that swift build links it again.
LINKINPUTS = $(LINKDIR)/hot-functions.txt $(LINKDIR)/relro.ld $(LINKDIR)/libstdc++.so $(COMPAT)

# Builds release product $(1) linked as the shipped binary is (static Swift
# runtime, the sysroot's GLib and libudev, no $ORIGIN library path).
release_build = PKG_CONFIG_PATH=$(abspath $(SYSROOT))/pkgconfig \
	$(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath --product $(1) $(PORTABLE)

build: deps $(COMPAT)
	@for input in $(LINKINPUTS); do [ .build/release/qemu-ga -nt $$input ] || rm -f .build/release/qemu-ga; done
	$(call release_build,qemu-ga)

$(SYSROOT)/.complete:
	$(LINKDIR)/make-sysroot $(SYSROOT)

$(COMPAT): $(LINKDIR)/glibc-compat.c $(SYSROOT)/.complete
	clang -O2 -fPIC -c $< -o $@

# The release link orders the functions named in link/hot-functions.txt
# (bench/hot-functions.py writes it); lld skips names the objects no longer
# have, so a stale list scatters the hot code again. Fails above a few.
check-hot-functions: build
	python3 bench/hot-functions.py --check .build/release/qemu-ga

# Where the idle agent's memory goes, beside qemu-ga 7.2 and the floor under
# any agent built this way (bench/footprint.py, README "Footprint").
footprint: build
	$(call release_build,footprint-floor)
	python3 bench/footprint.py --floor .build/release/footprint-floor .build/release/qemu-ga /usr/sbin/qemu-ga

check-floor: build
	Tests/portability/check-floor $(BINARY)

# The floor check, then the binary in Debian 11 and 13 root filesystems.
check-portable: build
	Tests/portability/run $(BINARY)

# Only used when the binary is missing: install does not build.
$(BINARY):
	@echo "$(BINARY) does not exist: run 'make build' first" >&2
	@exit 1

install: $(BINARY)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(UDEVRULESDIR) $(HOOK).d $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 0755 $(BINARY) $(DESTDIR)$(SBINDIR)/qemu-ga
	sed 's|/usr/sbin/qemu-ga|$(SBINDIR)/qemu-ga|' \
		systemd/qemu-guest-agent.service >$(UNIT)
	chmod 0644 $(UNIT)
	$(INSTALL) -m 0644 systemd/60-qemu-guest-agent.rules $(DESTDIR)$(UDEVRULESDIR)/
	test -e $(HOOK) || $(INSTALL) -m 0755 config/fsfreeze-hook $(HOOK)
	$(INSTALL) -m 0644 config/qemu-ga.conf $(DESTDIR)$(DOCDIR)/qemu-ga.conf.example
	$(INSTALL) -m 0644 config/fsfreeze-hook.d/README \
		$(DESTDIR)$(DOCDIR)/README.fsfreeze-hook.d

# Removes what install put there.  The hook is removed only if it is still
# ours; fsfreeze-hook.d/ only if it is empty.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/qemu-ga $(UNIT) \
		$(DESTDIR)$(UDEVRULESDIR)/60-qemu-guest-agent.rules \
		$(DESTDIR)$(DOCDIR)/qemu-ga.conf.example \
		$(DESTDIR)$(DOCDIR)/README.fsfreeze-hook.d
	if cmp -s config/fsfreeze-hook $(HOOK); then rm -f $(HOOK); fi
	rmdir $(HOOK).d $(DESTDIR)$(DOCDIR) 2>/dev/null || true

# QGA_TESTS_REQUIRE_SYSTEM=1: the NeedsSystem tests (the reference, root,
# loop devices) fail where something they need is missing, instead of being
# skipped as in a plain swift test.
check: deps
	QGA_TESTS_REQUIRE_SYSTEM=1 $(SWIFT) test
	bash Tests/packaging/test-install.sh

# swift test with the reference hidden: passes, the group skipped; and the
# group fails under QGA_TESTS_REQUIRE_SYSTEM=1 (Tests/hermetic/run).
check-hermetic: deps
	SWIFT=$(SWIFT) Tests/hermetic/run

check-packaging:
	bash Tests/packaging/test-install.sh

check-vm:
	Tests/vm/run

check-libvirt:
	Tests/vm/libvirt

# The guest image is made once (.build-vm/bookworm); the second run proves
# that the checks hold for the package we replace too.
check-systemd: deb
	Tests/vm/systemd-guest "$$(ls -t $(PACKAGES_DIR)/swift-qemu-ga_*_amd64.deb | head -n 1)"
	Tests/vm/systemd-guest .build-vm/bookworm/debs/qemu-guest-agent_*.deb

check-robustness:
	Tests/robustness/run-ci

# Packages (Tests/packaging/test-packages.sh checks them).  dpkg-deb and
# rpmbuild come from Debian's dpkg-dev and rpm, the checks use lintian, man
# and cpio; installed when missing, as deps does.
PACKAGES_DIR  ?= .build-packages
PACKAGE_TOOLS  = dpkg-dev rpm lintian man-db cpio
deps-packages:
	@missing=$$(for package in $(PACKAGE_TOOLS); do \
		dpkg-query -W -f='$${Status}\n' $$package 2>/dev/null | grep -q '^install ok installed' || echo $$package; done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

deb: build deps-packages
	BINARY=$(BINARY) config/packaging/build-packages deb $(PACKAGES_DIR)

rpm: build deps-packages
	BINARY=$(BINARY) config/packaging/build-packages rpm $(PACKAGES_DIR)

check-packages: build deps-packages
	BINARY=$(BINARY) bash Tests/packaging/test-packages.sh

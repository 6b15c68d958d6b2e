# swift-qemu-ga: build and install over Debian's qemu-guest-agent layout.
#
#   make build                      release build (needs the Swift toolchain)
#   make install [DESTDIR=/tmp/x]   install the built binary and support files
#   make uninstall [DESTDIR=...]
#   make check                      every test: swift test, then the packaging test
#   make check-packaging            run Tests/packaging/test-install.sh
#   make check-vm                   the end-to-end test in a real VM (Tests/vm/run)
#   make check-robustness           sanitizers, soak and fuzzers, short forms
#                                   (Tests/robustness/run-ci)
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

.PHONY: all build install uninstall check check-packaging check-vm check-robustness

all: build

build:
	$(SWIFT) build -c release --static-swift-stdlib

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

check:
	$(SWIFT) test
	bash Tests/packaging/test-install.sh

check-packaging:
	bash Tests/packaging/test-install.sh

check-vm:
	Tests/vm/run

check-robustness:
	Tests/robustness/run-ci

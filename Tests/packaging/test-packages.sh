#!/usr/bin/env bash
# Package tests for swift-qemu-ga: builds the .deb and the .rpm from the
# release binary (config/packaging/build-packages, as "make deb" and "make rpm" do)
# and checks what they hold and do, without installing anything on this
# machine (its /usr/sbin/qemu-ga is the tests' reference):
#
#   make check-packages           (builds the release binary first)
#   BINARY=... bash Tests/packaging/test-packages.sh
#
# Installs are made into throw-away roots only: "dpkg --root" into an empty
# directory, "rpm --root" into an empty rpm database, and, when running as
# root, apt and dpkg inside a copy of the Debian 13 root filesystem of the
# portability test, in a private mount namespace.  Prints one "ok" or
# "not ok" line per check, then "<n> passed, <n> failed"; exits 1 if
# anything failed.

. "$(dirname "${BASH_SOURCE[0]}")/checks.sh" packages
binary=${BINARY:-.build/release/qemu-ga}

same() { cmp -s "$1" "$2"; }
equal() { [ "$1" = "$2" ] || { printf '#   got:      %s\n#   expected: %s\n' "$1" "$2" | head -40; return 1; }; }
contains() { grep -qF -- "$2" <<<"$1"; }
has_line() { grep -qxF -- "$2" <<<"$1"; }

version=$(sed -n 's/^package let swiftQemuGaVersion = "\(.*\)"$/\1/p' Sources/GuestAgent/Config/Version.swift)
deb_version=$(sed -n '1s/^swift-qemu-ga (\([^)]*\)).*/\1/p' config/packaging/debian/changelog)

if [ ! -x "$binary" ]; then
    echo "not ok - $binary exists (run make build)"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---------------------------------------------------------------------------
# Build both packages
# ---------------------------------------------------------------------------

out=$tmp/out
check "build-packages deb succeeds" bash -c "BINARY='$binary' config/packaging/build-packages deb '$out' >'$tmp/deb.log' 2>&1"
check "build-packages rpm succeeds" bash -c "BINARY='$binary' config/packaging/build-packages rpm '$out' >'$tmp/rpm.log' 2>&1"
deb=$out/swift-qemu-ga_${deb_version}_amd64.deb
rpm=$out/swift-qemu-ga-$version-1.x86_64.rpm
check "the .deb is named swift-qemu-ga_${deb_version}_amd64.deb" test -f "$deb"
check "the Debian version is the agent's version ($version) with a revision" \
    test "${deb_version%-*}" = "$version"
check "the .rpm is named swift-qemu-ga-$version-1.x86_64.rpm" test -f "$rpm"
if [ ! -f "$deb" ] || [ ! -f "$rpm" ]; then
    cat "$tmp/deb.log" "$tmp/rpm.log" | sed 's/^/#   /'
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
fi

BINARY=$binary config/packaging/build-packages deb "$tmp/again" >/dev/null 2>&1
check "the .deb is reproducible (a second build is identical)" same "$deb" "$tmp/again/${deb##*/}"

# The release binary stripped as the packages strip it.
stripped=$tmp/stripped-qemu-ga
install -m 0755 "$binary" "$stripped"
strip --remove-section=.comment --remove-section=.note "$stripped"

# ---------------------------------------------------------------------------
# The .deb: control data
# ---------------------------------------------------------------------------

field() { dpkg-deb -f "$deb" "$1"; }
check "Package: swift-qemu-ga" equal "$(field Package)" swift-qemu-ga
check "Version: $deb_version" equal "$(field Version)" "$deb_version"
check "Architecture: amd64" equal "$(field Architecture)" amd64
check "Provides: qemu-guest-agent" equal "$(field Provides)" qemu-guest-agent
check "Conflicts: qemu-guest-agent" equal "$(field Conflicts)" qemu-guest-agent
check "Replaces: qemu-guest-agent" equal "$(field Replaces)" qemu-guest-agent
check "Depends: glibc 2.28, libgcc_s, GLib 2.56 (or Debian 13's t64 package), libudev" \
    equal "$(field Depends)" \
    'libc6 (>= 2.28), libgcc-s1 | libgcc1, libglib2.0-0 (>= 2.56) | libglib2.0-0t64, libudev1'
check "no Pre-Depends, Recommends or Suggests" \
    test -z "$(field Pre-Depends)$(field Recommends)$(field Suggests)"
check "Maintainer and Description are set" test -n "$(field Maintainer)" -a -n "$(field Description)"
check "Installed-Size is about the size of the files (KiB)" \
    test "$(field Installed-Size)" -gt 7000 -a "$(field Installed-Size)" -lt 20000

# dpkg-shlibdeps, from this machine's symbols files, names the same packages.
mkdir -p "$tmp/shlibdeps/debian"
printf 'Source: swift-qemu-ga\n\nPackage: swift-qemu-ga\nArchitecture: amd64\n' >"$tmp/shlibdeps/debian/control"
if command -v dpkg-shlibdeps >/dev/null &&
    shlibs=$(cd "$tmp/shlibdeps" && dpkg-shlibdeps -O "$stripped" 2>/dev/null); then
    names=$(sed -e 's/^shlibs:Depends=//' -e 's/([^)]*)//g' -e 's/[ ,|]\+/\n/g' <<<"$shlibs" | sed '/^$/d' | sort -u)
    missing=
    for name in $names; do
        contains "$(field Depends)" "$name" || missing="$missing $name"
    done
    check "Depends names every package dpkg-shlibdeps finds ($(tr '\n' ' ' <<<"$names"))" test -z "$missing"
else
    skip "Depends names every package dpkg-shlibdeps finds" "no dpkg-shlibdeps"
fi

check "conffiles: /etc/qemu/fsfreeze-hook only" \
    equal "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)" /etc/qemu/fsfreeze-hook

ctrl=$tmp/ctrl
dpkg-deb -e "$deb" "$ctrl"
for script in postinst prerm postrm; do
    check "$script is executable and valid sh" test -x "$ctrl/$script" -a -n "$(sh -n "$ctrl/$script" && echo ok)"
    check "$script rejects an unknown action" bash -c "! '$ctrl/$script' bogus-action >/dev/null 2>&1"
done
check "no preinst (nothing to do before unpacking)" test ! -e "$ctrl/preinst"
check "the scripts enable nothing (no deb-systemd-helper, no systemctl enable, no update-rc.d)" \
    test -z "$(grep -vh '^[[:space:]]*#' "$ctrl/postinst" "$ctrl/prerm" "$ctrl/postrm" | grep -E 'enable|deb-systemd-helper|update-rc\.d')"
check "the scripts act only under systemd and not under dpkg --root" \
    bash -c "for s in postinst prerm postrm; do grep -q 'DPKG_ROOT' '$ctrl/'\$s && grep -q '/run/systemd/system' '$ctrl/'\$s || exit 1; done"
check "postinst restarts the agent on an upgrade and starts it on a first install" \
    grep -q 'action=restart; else action=start' "$ctrl/postinst"
check "prerm stops the agent on removal" grep -q 'deb-systemd-invoke stop qemu-guest-agent.service' "$ctrl/prerm"

# The scripts run with every action against a fake system that records
# commands: under DPKG_ROOT they touch nothing, and neither do they here,
# where systemd is not running (no /run/systemd/system).
fakebin=$tmp/fakebin
mkdir -p "$fakebin"
for command in systemctl deb-systemd-invoke udevadm; do
    printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n' "$command" "$tmp" >"$fakebin/$command"
    chmod 0755 "$fakebin/$command"
done
runroot=$tmp/runroot
mkdir -p "$runroot/lib/systemd/system" "$runroot/lib/udev/rules.d"
touch "$runroot/lib/systemd/system/qemu-guest-agent.service" "$runroot/lib/udev/rules.d/60-qemu-guest-agent.rules"
check_scripts_quiet() {
    local description=$1 root=$2
    rm -f "$tmp/calls"
    local status=0
    for args in "postinst configure" "postinst configure 0.0.9-1" "prerm remove" "prerm upgrade 0.1.1-1" \
        "postrm remove" "postrm purge" "postrm upgrade 0.1.1-1" "postinst abort-upgrade 0.1.1-1"; do
        # shellcheck disable=SC2086
        set -- $args
        DPKG_ROOT=$root PATH=$fakebin:$PATH "$ctrl/$1" "${@:2}" >/dev/null 2>&1 || status=1
    done
    if [ "$status" = 0 ] && [ ! -e "$tmp/calls" ]; then pass "$description"; else
        fail "$description"
        sed 's/^/#   /' "$tmp/calls" 2>/dev/null
    fi
}
check_scripts_quiet "every script action exits 0 and runs nothing under DPKG_ROOT" "$runroot"
if [ ! -d /run/systemd/system ]; then
    check_scripts_quiet "every script action exits 0 and runs nothing without systemd" ""
else
    skip "every script action runs nothing without systemd" "systemd runs here"
fi
DPKG_ROOT=$tmp/emptyroot "$ctrl/postinst" configure >/dev/null 2>"$tmp/warning"
check "postinst warns when the unit was removed with a replaced package" \
    grep -q 'apt install --reinstall swift-qemu-ga' "$tmp/warning"

# ---------------------------------------------------------------------------
# The .deb: files
# ---------------------------------------------------------------------------

listing=$(dpkg-deb -c "$deb")
expected_files='./etc/
./etc/qemu/
./etc/qemu/fsfreeze-hook
./etc/qemu/fsfreeze-hook.d/
./lib/
./lib/systemd/
./lib/systemd/system/
./lib/systemd/system/qemu-guest-agent.service
./lib/udev/
./lib/udev/rules.d/
./lib/udev/rules.d/60-qemu-guest-agent.rules
./usr/
./usr/sbin/
./usr/sbin/qemu-ga
./usr/share/
./usr/share/doc/
./usr/share/doc/swift-qemu-ga/
./usr/share/doc/swift-qemu-ga/README.fsfreeze-hook.d
./usr/share/doc/swift-qemu-ga/changelog.Debian.gz
./usr/share/doc/swift-qemu-ga/copyright
./usr/share/doc/swift-qemu-ga/qemu-ga.conf.example
./usr/share/man/
./usr/share/man/man7/
./usr/share/man/man7/qemu-ga-ref.7.gz
./usr/share/man/man8/
./usr/share/man/man8/qemu-ga.8.gz'
check "the .deb holds exactly the expected files" \
    equal "$(awk '{ print $6 }' <<<"$listing" | sed '/^\.\/$/d' | sort)" "$expected_files"
check "everything is owned by root:root" test -z "$(awk '$2 != "root/root"' <<<"$listing")"
mode_of() { awk -v path="$1" '$6 == path { print $1 }' <<<"$listing"; }
check "/usr/sbin/qemu-ga is -rwxr-xr-x" equal "$(mode_of ./usr/sbin/qemu-ga)" -rwxr-xr-x
check "/etc/qemu/fsfreeze-hook is -rwxr-xr-x" equal "$(mode_of ./etc/qemu/fsfreeze-hook)" -rwxr-xr-x
check "every other file is -rw-r--r-- and every directory drwxr-xr-x" \
    test -z "$(awk '$6 != "./usr/sbin/qemu-ga" && $6 != "./etc/qemu/fsfreeze-hook" &&
        !(($1 == "-rw-r--r--") || ($1 == "drwxr-xr-x"))' <<<"$listing")"
check "no /etc/qemu/qemu-ga.conf" test -z "$(grep 'qemu-ga\.conf$' <<<"$listing")"

x=$tmp/deb-x
dpkg-deb -x "$deb" "$x"
check "md5sums matches the files" bash -c "cd '$x' && md5sum --quiet -c '$ctrl/md5sums'"
check "md5sums lists every file but the conffile" \
    equal "$(awk '{ print $2 }' "$ctrl/md5sums" | sort)" "$(cd "$x" && find . -type f ! -path ./etc/\* | sed 's|^\./||' | sort)"
check "the binary is stripped (no symbol table, no debugging information)" \
    bash -c "! readelf -S '$x/usr/sbin/qemu-ga' | grep -qE '\\.symtab|\\.debug_'"
check "the binary equals a stripped copy of $binary" same "$x/usr/sbin/qemu-ga" "$stripped"
# Tests run the agent on fixture machines through qemu-ga-fixture only: the
# shipped agent has no way to be pointed at another machine.
check "the packaged binary has no test switch (no QGA_SYSTEM_ROOT, no fixture machine)" \
    bash -c "! strings '$x/usr/sbin/qemu-ga' | grep -qE 'QGA_SYSTEM_ROOT|/settimeofday|Fixture'"
check "the packaged binary searches no directory of its own for libraries (no RPATH/RUNPATH)" \
    bash -c "! readelf -d '$x/usr/sbin/qemu-ga' | grep -qE 'RPATH|RUNPATH'"
check "the packaged binary runs and reports swift-qemu-ga $version" \
    equal "$("$x/usr/sbin/qemu-ga" -V 2>&1 | sed -n 2p)" "swift-qemu-ga $version"
if [ -x Tests/portability/check-floor ]; then
    check "the packaged binary keeps the glibc 2.28 / GLib 2.56 floor (check-floor)" \
        bash -c "Tests/portability/check-floor '$x/usr/sbin/qemu-ga' >'$tmp/floor.log' 2>&1"
fi
check "the unit is systemd/qemu-guest-agent.service" same "$x/lib/systemd/system/qemu-guest-agent.service" systemd/qemu-guest-agent.service
check "the udev rule is systemd/60-qemu-guest-agent.rules" same "$x/lib/udev/rules.d/60-qemu-guest-agent.rules" systemd/60-qemu-guest-agent.rules
check "the hook is config/fsfreeze-hook" same "$x/etc/qemu/fsfreeze-hook" config/fsfreeze-hook
check "fsfreeze-hook.d/ is empty" test -z "$(ls -A "$x/etc/qemu/fsfreeze-hook.d")"
check "the example configuration is config/qemu-ga.conf" \
    same "$x/usr/share/doc/swift-qemu-ga/qemu-ga.conf.example" config/qemu-ga.conf
check "copyright is machine-readable (DEP-5)" \
    grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' "$x/usr/share/doc/swift-qemu-ga/copyright"
gunzip -c "$x/usr/share/doc/swift-qemu-ga/changelog.Debian.gz" >"$tmp/changelog"
check "changelog.Debian.gz parses and its version is the package's" \
    equal "$(dpkg-parsechangelog -l "$tmp/changelog" -S Version 2>/dev/null)" "$deb_version"

# ---------------------------------------------------------------------------
# Man pages
# ---------------------------------------------------------------------------

for page in man8/qemu-ga.8 man7/qemu-ga-ref.7; do
    gunzip -c "$x/usr/share/man/$page.gz" >"$tmp/${page##*/}"
    check "$page: no @...@ placeholder left" bash -c "! grep -q '@[A-Z_]*@' '$tmp/${page##*/}'"
    check "$page renders without warnings" \
        bash -c "LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l '$tmp/${page##*/}' 2>&1 >'$tmp/${page##*/}.txt' | (! grep .)"
done
check "qemu-ga(8) names the agent's versions" \
    grep -q "swift-qemu-ga $version" "$tmp/qemu-ga.8"
longs=$("$binary" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
missing=
for long in $longs; do
    sed 's/\\-/-/g' "$tmp/qemu-ga.8" | grep -qF -- "$long" || missing="$missing $long"
done
check "qemu-ga(8) describes every long option of --help" equal "$missing" ""
keys=$(sed -n 's/^#\([a-z-]*\) =.*/\1/p' config/qemu-ga.conf | sort -u)
missing=
for key in $keys thaw-after kill-hook-after exclude-interfaces exec-allow open-allow exec-timeout exec-output-budget; do
    grep -qE "^$key"$'\t' "$tmp/qemu-ga.8" || missing="$missing $key"
done
check "qemu-ga(8)'s key table lists every key of the example configuration and ours" equal "$missing" ""
missing=
for command in $("$binary" --block-rpcs=help); do
    grep -qE "^\\.B[IR]? $command( |\$)|^\\.BR ($command|.* $command)( |,|\$)" "$tmp/qemu-ga-ref.7" ||
        grep -qF ".BR $command " "$tmp/qemu-ga-ref.7" || missing="$missing $command"
done
check "qemu-ga-ref(7) describes every command of --block-rpcs=help" equal "$missing" ""

# ---------------------------------------------------------------------------
# lintian
# ---------------------------------------------------------------------------

if command -v lintian >/dev/null; then
    lintian --no-tag-display-limit -I -E --pedantic "$deb" >"$tmp/lintian.txt" 2>/dev/null
    check "lintian reports no errors" bash -c "! grep -q '^E:' '$tmp/lintian.txt'"
    sed -n 's/^\([WIPX]\): /#   lintian \1: /p' "$tmp/lintian.txt"
else
    fail "lintian is installed (make deps-packages)"
fi

# ---------------------------------------------------------------------------
# dpkg --root: install and purge into an empty directory (the maintainer
# scripts run outside the root and do nothing under DPKG_ROOT)
# ---------------------------------------------------------------------------

droot=$tmp/droot
mkdir -p "$droot/var/lib/dpkg/info" "$droot/var/lib/dpkg/updates"
touch "$droot/var/lib/dpkg/status"
dpkg_root() { dpkg --root="$droot" --force-script-chrootless --log=/dev/null "$@"; }
check "dpkg --root installs the .deb into an empty root" \
    bash -c "$(declare -f dpkg_root); droot='$droot'; dpkg_root --force-depends -i '$deb' >'$tmp/dpkg-root.log' 2>&1"
check "dpkg --root: the files landed" \
    equal "$(cd "$droot" && find . -path ./var -prune -o -type f -print | sort)" \
    "$(cd "$x" && find . -type f | sort)"
check "dpkg --root: the package is installed and the hook is its conffile" \
    bash -c "dpkg --root='$droot' -s swift-qemu-ga 2>/dev/null | grep -q '^Status: install ok installed' &&
        dpkg --root='$droot' -s swift-qemu-ga | grep -q '^ /etc/qemu/fsfreeze-hook [0-9a-f]*\$'"
echo '# local change' >>"$droot/etc/qemu/fsfreeze-hook"
cp "$droot/etc/qemu/fsfreeze-hook" "$tmp/changed-hook"
dpkg_root --force-depends --force-confold -i "$deb" >"$tmp/dpkg-reinstall.log" 2>&1
check "dpkg --root: a changed hook survives a reinstall" same "$droot/etc/qemu/fsfreeze-hook" "$tmp/changed-hook"
dpkg_root -r swift-qemu-ga >/dev/null 2>&1
check "dpkg --root: remove keeps only the conffile" \
    equal "$(cd "$droot" && find . -path ./var -prune -o -type f -print)" ./etc/qemu/fsfreeze-hook
dpkg_root -P swift-qemu-ga >/dev/null 2>&1
check "dpkg --root: purge leaves no file" \
    equal "$(cd "$droot" && find . -path ./var -prune -o -type f -print)" ""

# ---------------------------------------------------------------------------
# Taking over from Debian's qemu-guest-agent and giving back, with apt in a
# copy of Debian 13's root filesystem (no systemd runs there, so the scripts
# only install files).  A stand-in for Debian's package, laid out as Debian
# 13's, plays the replaced package.
# ---------------------------------------------------------------------------

chroots=$repo/.build-chroots
takeover() {
    local root=$tmp/trixie
    cp -a "$chroots/trixie" "$root" || return 1
    local fake=$tmp/fake-qga
    mkdir -p "$fake/DEBIAN" "$fake/usr/sbin" "$fake/etc/qemu/fsfreeze-hook.d" \
        "$fake/usr/lib/systemd/system" "$fake/usr/lib/udev/rules.d"
    printf '#!/bin/sh\necho stand-in for Debian qemu-ga\n' >"$fake/usr/sbin/qemu-ga"
    printf '#!/bin/sh\n# stand-in for Debian fsfreeze-hook\nexit 0\n' >"$fake/etc/qemu/fsfreeze-hook"
    chmod 0755 "$fake/usr/sbin/qemu-ga" "$fake/etc/qemu/fsfreeze-hook"
    echo '[Unit]' >"$fake/usr/lib/systemd/system/qemu-guest-agent.service"
    echo '# stand-in rule' >"$fake/usr/lib/udev/rules.d/60-qemu-guest-agent.rules"
    printf 'Package: qemu-guest-agent\nVersion: 1:10.0.13+ds-0+deb13u1\nArchitecture: amd64\nMaintainer: test <test@localhost>\nDescription: stand-in\n stand-in for Debian qemu-guest-agent\n' \
        >"$fake/DEBIAN/control"
    echo /etc/qemu/fsfreeze-hook >"$fake/DEBIAN/conffiles"
    dpkg-deb --root-owner-group -b "$fake" "$root/tmp/qemu-guest-agent.deb" >/dev/null
    cp "$deb" "$root/tmp/swift-qemu-ga.deb"
    cat >"$root/tmp/steps" <<'EOF'
set -u
export DEBIAN_FRONTEND=noninteractive
apt() { apt-get -q -y -o Dpkg::Use-Pty=0 -o APT::Sandbox::User=root "$@" </dev/null; }
state() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | tr -d ' '; }
echo "step debian-installed $(apt install /tmp/qemu-guest-agent.deb >/tmp/1.log 2>&1 && echo ok) $(state qemu-guest-agent)"
echo "step takeover $(apt install /tmp/swift-qemu-ga.deb >/tmp/2.log 2>&1 && echo ok) $(state qemu-guest-agent) $(state swift-qemu-ga)"
echo "step files $(test -s /usr/lib/systemd/system/qemu-guest-agent.service && test -s /usr/lib/udev/rules.d/60-qemu-guest-agent.rules && echo ok)"
echo "step hook $(grep -q 'swift-qemu-ga: fsfreeze hook' /etc/qemu/fsfreeze-hook && echo ok)"
echo "step version $(/usr/sbin/qemu-ga -V 2>&1 | sed -n 2p | tr ' ' _)"
echo "step giveback $(apt install /tmp/qemu-guest-agent.deb >/tmp/3.log 2>&1 && echo ok) $(state qemu-guest-agent) $(state swift-qemu-ga)"
echo "step debian-files $(/usr/sbin/qemu-ga | tr ' ' _) $(grep -q 'stand-in for Debian fsfreeze-hook' /etc/qemu/fsfreeze-hook && echo hook-ok)"
dpkg --purge swift-qemu-ga >/dev/null 2>&1
echo "step purge $(state swift-qemu-ga)none $(test -f /etc/qemu/fsfreeze-hook && echo hook-kept)"
echo '# local change' >>/etc/qemu/fsfreeze-hook
cp /etc/qemu/fsfreeze-hook /tmp/edited-hook
apt -o Dpkg::Options::=--force-confold install /tmp/swift-qemu-ga.deb >/tmp/4.log 2>&1
echo "step edited $(state swift-qemu-ga) $(cmp -s /tmp/edited-hook /etc/qemu/fsfreeze-hook && echo kept) $(grep -q 'swift-qemu-ga: fsfreeze hook' /etc/qemu/fsfreeze-hook.dpkg-dist && echo dist)"
EOF
    unshare -m sh -c "mount -t proc proc '$root/proc' && chroot '$root' bash /tmp/steps" >"$tmp/takeover.txt" 2>&1
    cp "$root"/tmp/[1234].log "$tmp/" 2>/dev/null
    rm -rf "$root"
}
step() { sed -n "s/^step $1 //p" "$tmp/takeover.txt"; }
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
    skip "apt takes over from Debian's qemu-guest-agent and gives back" "needs root"
elif ! Tests/portability/rootfs trixie "$chroots/trixie" >"$tmp/rootfs.log" 2>&1; then
    skip "apt takes over from Debian's qemu-guest-agent and gives back" "no Debian 13 root filesystem"
else
    before=$failed
    takeover
    check "takeover: Debian's package (stand-in) installs in Debian 13" equal "$(step debian-installed)" "ok ii"
    check "takeover: apt install ./swift-qemu-ga.deb removes it (config files kept) and installs ours" \
        equal "$(step takeover)" "ok rc ii"
    check "takeover: the unit and the udev rule are there (apt removes the old package first)" equal "$(step files)" ok
    check "takeover: the unchanged Debian hook is replaced by ours without a question" equal "$(step hook)" ok
    check "takeover: our qemu-ga runs in Debian 13" equal "$(step version)" "swift-qemu-ga_$version"
    check "give back: apt install of Debian's package removes ours and installs it again" \
        equal "$(step giveback)" "ok ii rc"
    check "give back: Debian's binary and hook are back" equal "$(step debian-files)" "stand-in_for_Debian_qemu-ga hook-ok"
    check "give back: purging ours leaves Debian's hook alone" equal "$(step purge)" "none hook-kept"
    check "takeover with an edited Debian hook (--force-confold): the edit is kept, ours is .dpkg-dist" \
        equal "$(step edited)" "ii kept dist"
    if [ "$failed" != "$before" ]; then sed 's/^/#   /' "$tmp/takeover.txt" "$tmp"/[1234].log 2>/dev/null | tail -40; fi
fi

# ---------------------------------------------------------------------------
# The .rpm
# ---------------------------------------------------------------------------

rpmq() { rpm -qp "$@" "$rpm" 2>/dev/null; }
expected_rpm_files='/etc/qemu-ga
/etc/qemu-ga/fsfreeze-hook
/etc/qemu-ga/fsfreeze-hook.d
/etc/sysconfig/qemu-ga
/usr/bin/qemu-ga
/usr/lib/systemd/system/qemu-guest-agent.service
/usr/lib/udev/rules.d/99-qemu-guest-agent.rules
/usr/share/doc/swift-qemu-ga
/usr/share/doc/swift-qemu-ga/README.fsfreeze-hook.d
/usr/share/doc/swift-qemu-ga/copyright
/usr/share/doc/swift-qemu-ga/qemu-ga.conf.example
/usr/share/man/man7/qemu-ga-ref.7.gz
/usr/share/man/man8/qemu-ga.8.gz
/var/log/qemu-ga'
check "rpm -qpl: Fedora's and RHEL's layout, exactly" equal "$(rpmq -l | sort)" "$expected_rpm_files"
check "rpm: every file is root's" test -z "$(rpmq --qf '[%{FILEUSERNAME}:%{FILEGROUPNAME}\n]' | grep -v '^root:root$')"
check "rpm: config files are /etc/sysconfig/qemu-ga and the hook, both noreplace" \
    equal "$(rpmq --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' | awk 'NF == 2 && $1 ~ /^c/ { print $1, $2 }' | sort)" \
    $'cn /etc/qemu-ga/fsfreeze-hook\ncn /etc/sysconfig/qemu-ga'
check "rpm: Provides qemu-guest-agent" has_line "$(rpmq --provides)" "qemu-guest-agent = $version-1"
check "rpm: Obsoletes qemu-guest-agent < 99:0 (above Fedora's epoch 2 and RHEL's 15 to 18)" \
    equal "$(rpmq --obsoletes)" "qemu-guest-agent < 99:0"
check "rpm: Conflicts qemu-guest-agent < 99:0" equal "$(rpmq --conflicts)" "qemu-guest-agent < 99:0"
requires=$(rpmq --requires)
requires_libraries() {
    local lib
    for lib in 'libglib-2.0.so.0()(64bit)' 'libudev.so.1()(64bit)' 'libgcc_s.so.1()(64bit)' 'libc.so.6()(64bit)'; do
        has_line "$requires" "$lib" || return 1
    done
}
check "rpm: requires the libraries of the binary (GLib, libudev, libgcc_s, glibc)" requires_libraries
check "rpm: no glibc symbol version above 2.28 required" \
    test -z "$(grep -oE 'GLIBC_2\.(29|[3-9][0-9])' <<<"$requires")"
scripts=$(rpmq --scripts)
for scriptlet in preinstall postinstall preuninstall postuninstall posttrans; do
    check "rpm: has a $scriptlet scriptlet" contains "$scripts" "$scriptlet scriptlet"
done
check "rpm: scriptlets act only under systemd" test "$(grep -c '/run/systemd/system' <<<"$scripts")" -ge 5
preset_and_disable() { contains "$scripts" "preset qemu-guest-agent.service" && contains "$scripts" "disable --now qemu-guest-agent.service"; }
check "rpm: a first install presets the service (as Fedora's systemd_post), removal disables it" preset_and_disable
check "rpm: an upgrade restarts a running agent" contains "$scripts" "try-restart qemu-guest-agent.service"
awk '/scriptlet \(using \/bin\/sh\):$/ { n++; file = sprintf("%s/scriptlet-%d", dir, n); next } { if (file) print > file }' \
    dir="$tmp" <<<"$scripts"
check "rpm: every scriptlet is valid sh" bash -c "for f in '$tmp'/scriptlet-*; do sh -n \"\$f\" || exit 1; done"

rx=$tmp/rpm-x
mkdir -p "$rx"
(cd "$rx" && rpm2cpio "$rpm" | cpio -idm --quiet 2>/dev/null)
check "rpm: the binary is the .deb's (stripped release binary)" same "$rx/usr/bin/qemu-ga" "$stripped"
check "rpm: the hook is config/fsfreeze-hook" same "$rx/etc/qemu-ga/fsfreeze-hook" config/fsfreeze-hook
check "rpm: the udev rule is systemd/60-qemu-guest-agent.rules" same "$rx/usr/lib/udev/rules.d/99-qemu-guest-agent.rules" systemd/60-qemu-guest-agent.rules
check "rpm: the man pages are the .deb's" bash -c "cmp -s '$rx/usr/share/man/man8/qemu-ga.8.gz' '$x/usr/share/man/man8/qemu-ga.8.gz' && cmp -s '$rx/usr/share/man/man7/qemu-ga-ref.7.gz' '$x/usr/share/man/man7/qemu-ga-ref.7.gz'"

unit=$rx/usr/lib/systemd/system/qemu-guest-agent.service
directives() { grep -vE '^[[:space:]]*([#;]|$)' "$1"; }
# The RPM's unit is Debian's with Fedora's and RHEL's additions; every other
# directive (Type=, WatchdogSec=, Restart= ...) is carried over.
check "rpm unit: Debian's directives but ExecStart, plus IgnoreOnIsolate, UMask, EnvironmentFile, WantedBy" \
    equal "$(directives "$unit" | grep -vE '^(ExecStart=|  -|IgnoreOnIsolate=true$|UMask=0077$|EnvironmentFile=-/etc/sysconfig/qemu-ga$|WantedBy=dev-virtio\\x2dports-org\.qemu\.guest_agent\.0\.device$)')" \
    "$(directives systemd/qemu-guest-agent.service | grep -v '^ExecStart=')"
execstart=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$unit" | sed -e 's/\\$//' -e 's/^ExecStart=//' | tr -s ' \n' '  ')
if command -v systemd-analyze >/dev/null; then
    for u in "$x/lib/systemd/system/qemu-guest-agent.service" "$unit"; do
        cp "$u" "$tmp/qemu-guest-agent.service"
        check "systemd-analyze verify accepts the ${u#$tmp/} (but for a missing /usr/bin/qemu-ga here)" \
            test -z "$(systemd-analyze verify "$tmp/qemu-guest-agent.service" 2>&1 | grep -v 'Command /usr/bin/qemu-ga is not executable')"
    done
fi
check "rpm unit: runs /usr/bin/qemu-ga on the virtio port with the sysconfig variables" \
    equal "$execstart" '/usr/bin/qemu-ga --method=virtio-serial --path=/dev/virtio-ports/org.qemu.guest_agent.0 --block-rpcs=${BLACKLIST_RPC} --block-rpcs=${BLOCK_RPCS} $FILTER_RPC_ARGS -F${FSFREEZE_HOOK_PATHNAME} '

# ExecStart as systemd expands it: ${NAME} one word, $NAME split at spaces.
expand_execstart() { # expand_execstart ENVFILE: prints the arguments, one per line
    local -A env=()
    local line name value word
    while IFS= read -r line; do
        [[ $line =~ ^([A-Z_]+)=(.*)$ ]] && env[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    done <"$1"
    for word in $execstart; do
        if [[ $word =~ ^\$([A-Z_]+)$ ]]; then
            for value in ${env[${BASH_REMATCH[1]}]:-}; do printf '%s\n' "$value"; done
        else
            while [[ $word =~ \$\{([A-Z_]+)\} ]]; do
                name=${BASH_REMATCH[1]}
                word=${word/\$\{$name\}/${env[$name]:-}}
            done
            printf '%s\n' "$word"
        fi
    done
}
run_unit() { # run_unit ENVFILE: the built agent with the unit's arguments and -D
    local args=()
    mapfile -t args < <(expand_execstart "$1")
    QGA_CONF=$tmp/no-such.conf "$binary" "${args[@]:1}" -D 2>&1
}
dump=$(run_unit "$rx/etc/sysconfig/qemu-ga")
check "rpm unit + shipped sysconfig: the agent accepts the arguments (virtio port, RHEL hook, nothing blocked)" \
    equal "$(grep -E '^(method|path|fsfreeze-hook|block-rpcs|allow-rpcs)=' <<<"$dump")" \
    $'method=virtio-serial\npath=/dev/virtio-ports/org.qemu.guest_agent.0\nfsfreeze-hook=/etc/qemu-ga/fsfreeze-hook\nblock-rpcs=\nallow-rpcs='
printf 'BLACKLIST_RPC=guest-exec,guest-exec-status\nFSFREEZE_HOOK_PATHNAME=/etc/qemu-ga/fsfreeze-hook\n' >"$tmp/rhel8"
check "rpm unit + a RHEL 8 sysconfig (BLACKLIST_RPC): those commands blocked" \
    has_line "$(run_unit "$tmp/rhel8")" 'block-rpcs=guest-exec,guest-exec-status'
printf 'FILTER_RPC_ARGS=--allow-rpcs=guest-ping,guest-info --thaw-after=600\nBLOCK_RPCS=guest-exec\n' >"$tmp/rhel9"
check "rpm unit + RHEL 9 variables (BLOCK_RPCS, FILTER_RPC_ARGS): allow list, block list, our options" \
    bash -c "d=\$(cat); grep -qx 'allow-rpcs=guest-ping,guest-info' <<<\"\$d\" && grep -qx 'block-rpcs=guest-exec' <<<\"\$d\" && grep -qx 'thaw-after=600' <<<\"\$d\"" \
    <<<"$(run_unit "$tmp/rhel9")"
check "rpm: the shipped sysconfig sets only FSFREEZE_HOOK_PATHNAME" \
    equal "$(grep -vE '^[[:space:]]*(#|$)' "$rx/etc/sysconfig/qemu-ga")" 'FSFREEZE_HOOK_PATHNAME=/etc/qemu-ga/fsfreeze-hook'

# rpm --root: into an empty database (no dependencies, no scriptlets), then
# over a stand-in for Fedora's qemu-guest-agent with an edited sysconfig.
rroot=$tmp/rroot
rpm_root() { rpm --root "$rroot" --dbpath /var/lib/rpm "$@" 2>>"$tmp/rpm-root.log"; }
mkdir -p "$rroot"
rpm_root --initdb
check "rpm --root -i --nodeps --noscripts installs into an empty root" rpm_root -i --nodeps --noscripts "$rpm"
check "rpm --root: what landed is rpm -qpl's list" \
    equal "$(cd "$rroot" && find . -path ./var/lib/rpm -prune -o ! -type d -print -o -type d -empty -print | sed 's|^\.||' | sort)" \
    "$(rpmq -l | while read -r f; do [ -d "$rx$f" ] && [ -n "$(ls -A "$rx$f")" ] || echo "$f"; done | sort)"
check "rpm --root: rpm -V finds the files as packaged" rpm_root -V --nodeps swift-qemu-ga
rpm_root -e --nodeps --noscripts swift-qemu-ga
check "rpm --root: erase leaves no file" \
    equal "$(cd "$rroot" && find . -path ./var/lib/rpm -prune -o -type f -print)" ""

stand_in() { # stand_in SPECDIR: fake-base (our requirements) and qemu-guest-agent (Fedora's layout, epoch 2)
    local dir=$1
    mkdir -p "$dir"
    {
        printf 'Name: fake-base\nVersion: 1\nRelease: 1\nSummary: stand-in\nLicense: none\nBuildArch: noarch\n'
        rpmq --requires | grep -vE '^(rpmlib\(|config\()' | sort -u | sed 's/^/Provides: /'
        printf '%%description\nstand-in\n%%files\n'
    } >"$dir/fake-base.spec"
    cat >"$dir/qemu-guest-agent.spec" <<'EOF'
Name: qemu-guest-agent
Epoch: 2
Version: 9.2.0
Release: 1.fc41
Summary: stand-in
License: none
BuildArch: noarch
%description
stand-in for Fedora's qemu-guest-agent
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc/sysconfig %{buildroot}/etc/qemu-ga/fsfreeze-hook.d %{buildroot}/usr/lib/systemd/system
printf '#!/bin/sh\necho stand-in\n' >%{buildroot}/usr/bin/qemu-ga
echo 'FILTER_RPC_ARGS=--allow-rpcs=guest-ping,guest-info' >%{buildroot}/etc/sysconfig/qemu-ga
printf '#!/bin/sh\nexit 0\n' >%{buildroot}/etc/qemu-ga/fsfreeze-hook
echo '[Unit]' >%{buildroot}/usr/lib/systemd/system/qemu-guest-agent.service
%files
%attr(0755,-,-) /usr/bin/qemu-ga
%config(noreplace) /etc/sysconfig/qemu-ga
/etc/qemu-ga
/usr/lib/systemd/system/qemu-guest-agent.service
EOF
    local spec
    for spec in fake-base qemu-guest-agent; do
        rpmbuild -bb --quiet --define "_topdir $dir/top" --define "_rpmdir $dir" \
            --define "_build_name_fmt %%{NAME}.rpm" "$dir/$spec.spec" >>"$dir/build.log" 2>&1 || return 1
    done
}
if stand_in "$tmp/stand-in"; then
    rm -rf "$rroot" && mkdir -p "$rroot" && rpm_root --initdb
    rpm_root -i --noscripts "$tmp/stand-in/fake-base.rpm" "$tmp/stand-in/qemu-guest-agent.rpm"
    echo 'BLACKLIST_RPC=guest-exec,guest-exec-status' >"$rroot/etc/sysconfig/qemu-ga"
    check "rpm -U (dependencies checked) replaces Fedora's qemu-guest-agent (stand-in, epoch 2)" \
        rpm_root -U --noscripts "$rpm"
    check "rpm -U: qemu-guest-agent is gone, swift-qemu-ga installed" \
        equal "$(rpm --root "$rroot" --dbpath /var/lib/rpm -qa --qf '%{NAME}\n' | sort | tr '\n' ' ')" "fake-base swift-qemu-ga "
    check "rpm -U: the edited /etc/sysconfig/qemu-ga is kept, ours is .rpmnew" \
        bash -c "grep -qx 'BLACKLIST_RPC=guest-exec,guest-exec-status' '$rroot/etc/sysconfig/qemu-ga' && cmp -s '$rroot/etc/sysconfig/qemu-ga.rpmnew' '$rx/etc/sysconfig/qemu-ga'"
    check "rpm -U: the binary, hook and unit are ours" \
        bash -c "cmp -s '$rroot/usr/bin/qemu-ga' '$stripped' && cmp -s '$rroot/etc/qemu-ga/fsfreeze-hook' config/fsfreeze-hook && cmp -s '$rroot/usr/lib/systemd/system/qemu-guest-agent.service' '$unit'"
    check "rpm: qemu-guest-agent cannot be installed beside ours" \
        bash -c "! rpm --root '$rroot' --dbpath /var/lib/rpm -i --test '$tmp/stand-in/qemu-guest-agent.rpm' >/dev/null 2>&1"
    rpm_root -e --noscripts swift-qemu-ga
    check "rpm: once ours is erased, qemu-guest-agent installs again" \
        rpm_root -i --noscripts "$tmp/stand-in/qemu-guest-agent.rpm"
    # With the scriptlets, in a copy of the Debian 13 root filesystem (a
    # shell and coreutils for them; no systemd runs there): the replaced
    # package's unedited sysconfig, which on RHEL restricts the commands,
    # stays in force.
    if [ "$(id -u)" = 0 ] && [ -f "$chroots/trixie/.complete" ]; then
        sroot=$tmp/rpm-trixie
        cp -a "$chroots/trixie" "$sroot"
        rpm_s() { rpm --root "$sroot" --dbpath /var/lib/rpm "$@" 2>>"$tmp/rpm-scripts.log"; }
        rpm_s --initdb
        rpm_s -i "$tmp/stand-in/fake-base.rpm" "$tmp/stand-in/qemu-guest-agent.rpm"
        check "rpm -U with scriptlets replaces the stand-in" rpm_s -U "$rpm"
        check "rpm -U with scriptlets: the replaced package's unedited sysconfig stays, ours is .rpmnew" \
            bash -c "grep -qx 'FILTER_RPC_ARGS=--allow-rpcs=guest-ping,guest-info' '$sroot/etc/sysconfig/qemu-ga' && cmp -s '$sroot/etc/sysconfig/qemu-ga.rpmnew' '$rx/etc/sysconfig/qemu-ga'"
        check "rpm -U with scriptlets: no state left in /var/lib/rpm-state" test ! -e "$sroot/var/lib/rpm-state/swift-qemu-ga"
        check "rpm -e with scriptlets" rpm_s -e swift-qemu-ga
        check "rpm -e: the package's files are gone, the edited sysconfig saved" \
            bash -c "test ! -e '$sroot/usr/bin/qemu-ga' && test -f '$sroot/etc/sysconfig/qemu-ga.rpmsave'"
        rm -rf "$sroot"
    else
        skip "rpm -U with scriptlets in a Debian 13 root filesystem" "needs root and the portability rootfs"
    fi
else
    fail "rpmbuild builds the stand-in packages"
    sed 's/^/#   /' "$tmp/stand-in/build.log" | tail -20
fi

finish

#!/usr/bin/env bash
# Packaging tests for swift-qemu-ga: "make install", the fsfreeze hook and the
# example configuration file.  Needs no Swift build, no root and no network:
#
#   bash Tests/packaging/test-install.sh
#
# Prints one "ok - ..." or "not ok - ..." line per check, then
# "<n> passed, <n> failed"; exits 1 if anything failed.

. "$(dirname "${BASH_SOURCE[0]}")/checks.sh" packaging

# Helpers usable as check commands.
mode_is() { [ -e "$2" ] && [ "$(stat -c %a "$2")" = "$1" ]; }
same_file() { cmp -s "$1" "$2"; }
has_line() { grep -qxF -- "$2" "$1"; }
no_regular_files() { [ -z "$(find "$1" -type f -o -type l)" ]; }

# Meaningful lines of a unit file: no comments, no blanks, no Description=.
unit_directives() {
    grep -vE '^[[:space:]]*([#;]|$)' "$1" | grep -v '^Description='
}

# Rule assignments of a udev rules file, one per line, continuation lines
# joined and comments dropped.
udev_assignments() {
    sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$1" | grep -vE '^[[:space:]]*(#|$)' |
        tr ',' '\n' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//'
}

run_make() { # run_make LOGNAME ARGS...: make, output kept in $tmp/LOGNAME
    local log=$tmp/$1
    shift
    make --no-print-directory -s "$@" >"$log" 2>&1
}

# ---------------------------------------------------------------------------
# (a) make install / uninstall
# ---------------------------------------------------------------------------

fake=$tmp/fake-qemu-ga
printf '#!/bin/sh\necho fake qemu-ga\n' >"$fake"
chmod 0700 "$fake"
# A swift that leaves a trace: install must never call it.
fake_swift=$tmp/fake-swift
printf '#!/bin/sh\ntouch "%s/swift-was-called"\n' "$tmp" >"$fake_swift"
chmod 0755 "$fake_swift"

root=$tmp/root
check "make install DESTDIR=... BINARY=<fake> succeeds" \
    run_make install.log install DESTDIR="$root" BINARY="$fake" SWIFT="$fake_swift"
check "install does not run swift build" test ! -e "$tmp/swift-was-called"

check "binary installed to /usr/sbin/qemu-ga" same_file "$fake" "$root/usr/sbin/qemu-ga"
check "binary has mode 0755" mode_is 755 "$root/usr/sbin/qemu-ga"

unit=$root/lib/systemd/system/qemu-guest-agent.service
check "unit installed to /lib/systemd/system" test -f "$unit"
check "unit has mode 0644" mode_is 644 "$unit"
expected_unit=$'[Unit]
BindsTo=dev-virtio\\x2dports-org.qemu.guest_agent.0.device
After=dev-virtio\\x2dports-org.qemu.guest_agent.0.device
[Service]
Type=notify
NotifyAccess=main
WatchdogSec=1h
ExecStart=-/usr/sbin/qemu-ga
Restart=always
RestartSec=0
[Install]'
check "unit directives are Debian's (BindsTo/After device, ExecStart=-/usr/sbin/qemu-ga, Restart=always, RestartSec=0, empty [Install]) plus Type=notify, NotifyAccess=main, WatchdogSec=1h" \
    test "$(unit_directives "$unit")" = "$expected_unit"
check "unit has a Description" grep -q '^Description=.' "$unit"
# Our additions: the notification protocol and the watchdog.
debian_directives() { unit_directives "$1" | grep -vE '^(Type=notify|NotifyAccess=main|WatchdogSec=1h)$'; }
debian_unit=/lib/systemd/system/qemu-guest-agent.service
if [ -f "$debian_unit" ] && grep -q 'QEMU Guest Agent' "$debian_unit" &&
    ! grep -q swift-qemu-ga "$debian_unit"; then
    check "unit directives equal those of the installed Debian unit, but for Type=notify, NotifyAccess=main, WatchdogSec=1h" \
        test "$(debian_directives "$unit")" = "$(unit_directives "$debian_unit")"
else
    skip "unit directives equal those of the installed Debian unit" "no Debian unit here"
fi

rule=$root/lib/udev/rules.d/60-qemu-guest-agent.rules
check "udev rule installed to /lib/udev/rules.d" test -f "$rule"
check "udev rule has mode 0644" mode_is 644 "$rule"
expected_rule='SUBSYSTEM=="virtio-ports"
ATTR{name}=="org.qemu.guest_agent.0"
TAG+="systemd"
ENV{SYSTEMD_WANTS}="qemu-guest-agent.service"'
check "udev rule matches the org.qemu.guest_agent.0 virtio port and wants the service" \
    test "$(udev_assignments "$rule")" = "$expected_rule"
debian_rule=/lib/udev/rules.d/60-qemu-guest-agent.rules
if [ -f "$debian_rule" ] && ! grep -q swift-qemu-ga "$debian_rule"; then
    check "udev rule is equivalent to the installed Debian rule" \
        test "$(udev_assignments "$rule")" = "$(udev_assignments "$debian_rule")"
else
    skip "udev rule is equivalent to the installed Debian rule" "no Debian rule here"
fi

hook=$root/etc/qemu/fsfreeze-hook
check "hook installed to /etc/qemu/fsfreeze-hook" same_file config/fsfreeze-hook "$hook"
check "hook has mode 0755" mode_is 755 "$hook"
check "/etc/qemu/fsfreeze-hook.d/ installed and empty" \
    test -d "$hook.d" -a -z "$(ls -A "$hook.d" 2>/dev/null)"

doc=$root/usr/share/doc/swift-qemu-ga
check "example config installed to /usr/share/doc/swift-qemu-ga/qemu-ga.conf.example" \
    same_file config/qemu-ga.conf "$doc/qemu-ga.conf.example"
check "example config has mode 0644" mode_is 644 "$doc/qemu-ga.conf.example"
check "no /etc/qemu/qemu-ga.conf installed" test ! -e "$root/etc/qemu/qemu-ga.conf"

installed=$(cd "$root" && find . -type f | sort)
expected_files='./etc/qemu/fsfreeze-hook
./lib/systemd/system/qemu-guest-agent.service
./lib/udev/rules.d/60-qemu-guest-agent.rules
./usr/sbin/qemu-ga
./usr/share/doc/swift-qemu-ga/README.fsfreeze-hook.d
./usr/share/doc/swift-qemu-ga/qemu-ga.conf.example'
check "install creates exactly the expected files" test "$installed" = "$expected_files"

# Reinstalling keeps what the administrator has in /etc/qemu.
echo '# local settings' >"$root/etc/qemu/qemu-ga.conf"
printf '#!/bin/sh\n# local hook\nexit 0\n' >"$hook"
cp "$hook" "$tmp/local-hook"
cp "$root/etc/qemu/qemu-ga.conf" "$tmp/local-conf"
check "second make install succeeds" \
    run_make reinstall.log install DESTDIR="$root" BINARY="$fake" SWIFT="$fake_swift"
check "install keeps an existing /etc/qemu/qemu-ga.conf" \
    same_file "$tmp/local-conf" "$root/etc/qemu/qemu-ga.conf"
check "install keeps an existing /etc/qemu/fsfreeze-hook" same_file "$tmp/local-hook" "$hook"

check "make uninstall succeeds" run_make uninstall.log uninstall DESTDIR="$root"
check "uninstall leaves only the administrator's files" \
    test "$(cd "$root" && find . -type f | sort)" = $'./etc/qemu/fsfreeze-hook\n./etc/qemu/qemu-ga.conf'

root2=$tmp/root2
run_make install2.log install DESTDIR="$root2" BINARY="$fake" SWIFT="$fake_swift"
run_make uninstall2.log uninstall DESTDIR="$root2"
check "install then uninstall into an empty DESTDIR leaves no files" no_regular_files "$root2"
check "uninstall removes the empty fsfreeze-hook.d/" test ! -e "$root2/etc/qemu/fsfreeze-hook.d"

root3=$tmp/root3
check "make install PREFIX=/usr/local succeeds" \
    run_make install3.log install DESTDIR="$root3" PREFIX=/usr/local BINARY="$fake" SWIFT="$fake_swift"
check "PREFIX=/usr/local puts the binary in /usr/local/sbin" mode_is 755 "$root3/usr/local/sbin/qemu-ga"
check "PREFIX=/usr/local: unit stays in /lib/systemd/system and runs /usr/local/sbin/qemu-ga" \
    has_line "$root3/lib/systemd/system/qemu-guest-agent.service" 'ExecStart=-/usr/local/sbin/qemu-ga'

if run_make missing.log install DESTDIR="$tmp/root4" BINARY="$tmp/no-such-binary" SWIFT="$fake_swift"; then
    fail "install without a built binary fails"
else
    pass "install without a built binary fails"
fi
check "the failure says to run make build" grep -q 'make build' "$tmp/missing.log"
check "install without a binary does not build either" test ! -e "$tmp/swift-was-called"
check "install without a binary installs nothing" test ! -e "$tmp/root4"

make --no-print-directory -n build >"$tmp/build.txt"
check "make -n build builds the release qemu-ga with the static Swift runtime, no \$ORIGIN search path" \
    grep -q 'swift build -c release --static-swift-stdlib --disable-local-rpath --product qemu-ga' "$tmp/build.txt"
check "make -n build links it against the older glibc of the sysroot" \
    grep -q -- '-Xclang-linker -Xswiftc --sysroot=.*/.build-sysroot/bullseye' "$tmp/build.txt"

# Root is never needed with DESTDIR.  When this test runs as root, repeat the
# install as an unprivileged user.
if [ "$(id -u)" != 0 ]; then
    pass "install with DESTDIR works without root (ran as uid $(id -u))"
elif command -v setpriv >/dev/null && id nobody >/dev/null 2>&1 &&
    setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups test -r Makefile; then
    userdir=$tmp/as-nobody
    mkdir -p "$userdir"
    cp "$fake" "$userdir/fake-qemu-ga"
    chmod 0755 "$tmp"
    chown -R nobody "$userdir"
    if setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
        make --no-print-directory -s install DESTDIR="$userdir/root" \
        BINARY="$userdir/fake-qemu-ga" SWIFT=false >"$userdir/log" 2>&1 &&
        [ "$(stat -c %a "$userdir/root/usr/sbin/qemu-ga")" = 755 ]; then
        pass "install with DESTDIR works without root (ran as nobody)"
    else
        fail "install with DESTDIR works without root (ran as nobody)"
        sed 's/^/#   /' "$userdir/log"
    fi
else
    skip "install with DESTDIR works without root" "running as root and cannot switch to nobody"
fi

# ---------------------------------------------------------------------------
# (b) the fsfreeze hook, run for real
# ---------------------------------------------------------------------------

check "hook is valid POSIX sh (sh -n)" sh -n config/fsfreeze-hook
check "hook logs to /var/log/qga-fsfreeze-hook.log by default" \
    grep -qF '/var/log/qga-fsfreeze-hook.log' config/fsfreeze-hook

hookdir=$tmp/hook
d=$hookdir/fsfreeze-hook.d
mkdir -p "$d"
cp config/fsfreeze-hook "$hookdir/fsfreeze-hook"
chmod 0755 "$hookdir/fsfreeze-hook"
record=$tmp/record
hooklog=$tmp/hook.log

# Every entry records "<name> <args>" in $RECORD and prints on both streams.
make_entry() { # make_entry NAME MODE [EXIT_STATUS]
    cat >"$d/$1" <<EOF
#!/bin/sh
echo "\$(basename "\$0") \$*" >>"\$RECORD"
echo "stdout of $1"
echo "stderr of $1" >&2
exit ${3:-0}
EOF
    chmod "$2" "$d/$1"
}
make_entry 10-record 0755
make_entry 20-fail 0755 3
make_entry 30-record 0755
make_entry 05-not-executable 0644
make_entry .hidden 0755
mkdir "$d/25-directory"
chmod 0755 "$d/25-directory"
skipped_suffixes='~ .bak .orig .rpmnew .rpmorig .rpmsave .sample .dpkg-old .dpkg-new
    .dpkg-tmp .dpkg-dist .dpkg-bak .dpkg-backup .dpkg-remove'
for suffix in $skipped_suffixes; do
    make_entry "15-skipped$suffix" 0755
done

FSFREEZE_HOOK_LOG=$hooklog RECORD=$record "$hookdir/fsfreeze-hook" freeze \
    >"$tmp/hook.out" 2>&1
check "hook exits 0 although an entry exits 3" test $? = 0
check "hook itself prints nothing" test ! -s "$tmp/hook.out"
check "only executable regular entries without a skipped suffix run, in glob order, with the argument" \
    test "$(cat "$record" 2>/dev/null)" = $'10-record freeze\n20-fail freeze\n30-record freeze'

# The log with each date replaced by DATE.
normalized_log() {
    sed -E -e "s#^[^/]*: (execute $d/)#DATE: \\1#" \
        -e "s#^[^/]*: ($d/[^ ]* finished with status=)#DATE: \\1#" "$1"
}
expected_log() { # expected_log ARG: what one run of the hook with ARG logs
    local name status
    for name in 10-record 20-fail 30-record; do
        status=0
        [ "$name" = 20-fail ] && status=3
        printf 'DATE: execute %s %s\nstdout of %s\nstderr of %s\nDATE: %s finished with status=%s\n' \
            "$d/$name" "$1" "$name" "$name" "$d/$name" "$status"
    done
}
check "log has execute line, entry output and finished line with the status, per entry" \
    test "$(normalized_log "$hooklog")" = "$(expected_log freeze)"
check "log lines start with the output of date" \
    test "$(grep -cE '^[^ ].*[0-9]{2}:[0-9]{2}:[0-9]{2}.*: ' "$hooklog")" = 6

FSFREEZE_HOOK_LOG=$hooklog RECORD=$record "$hookdir/fsfreeze-hook" thaw >/dev/null 2>&1
check "hook with thaw exits 0" test $? = 0
check "second run appends to the log" \
    test "$(normalized_log "$hooklog")" = "$(expected_log freeze; expected_log thaw)"
check "thaw reaches every entry" \
    test "$(grep -c ' thaw$' "$record")" = 3

: >"$record"
(cd "$hookdir" && FSFREEZE_HOOK_LOG=$tmp/relative.log RECORD=$record ./fsfreeze-hook freeze \
    >/dev/null 2>&1)
check "hook started by a relative path finds fsfreeze-hook.d next to itself" \
    test "$(wc -l <"$record")" = 3

ln -s "$hookdir/fsfreeze-hook" "$tmp/linked-hook"
: >"$record"
FSFREEZE_HOOK_LOG=$tmp/linked.log RECORD=$record "$tmp/linked-hook" freeze >/dev/null 2>&1
check "hook started through a symlink looks next to the symlink (no fsfreeze-hook.d there)" \
    test $? = 0 -a ! -s "$record" -a ! -e "$tmp/linked.log"

: >"$record"
FSFREEZE_HOOK_LOG=$tmp/no-such-dir/hook.log RECORD=$record "$hookdir/fsfreeze-hook" freeze \
    >/dev/null 2>&1
check "unwritable log: hook still exits 0" test $? = 0
check "unwritable log: entries still run" test "$(wc -l <"$record")" = 3

nodir=$tmp/no-d
mkdir "$nodir"
cp config/fsfreeze-hook "$nodir/fsfreeze-hook"
: >"$record"
FSFREEZE_HOOK_LOG=$tmp/nodir.log RECORD=$record sh "$nodir/fsfreeze-hook" freeze >/dev/null 2>&1
check "missing fsfreeze-hook.d: exit 0" test $? = 0
check "missing fsfreeze-hook.d: nothing runs, nothing logged" \
    test ! -s "$record" -a ! -e "$tmp/nodir.log"

emptydir=$tmp/empty-d
mkdir -p "$emptydir/fsfreeze-hook.d"
cp config/fsfreeze-hook "$emptydir/fsfreeze-hook"
FSFREEZE_HOOK_LOG=$tmp/empty.log sh "$emptydir/fsfreeze-hook" freeze >/dev/null 2>&1
check "empty fsfreeze-hook.d: exit 0 and no log file" test $? = 0 -a ! -e "$tmp/empty.log"

# ---------------------------------------------------------------------------
# (c) the example configuration file
# ---------------------------------------------------------------------------

conf=config/qemu-ga.conf
check "example config: the only active line is the [general] header" \
    test "$(grep -vE '^[[:space:]]*(#|$)' "$conf")" = '[general]'
for key in daemon method path logfile pidfile fsfreeze-hook statedir verbose \
    retry-path block-rpcs allow-rpcs thaw-after kill-hook-after exclude-interfaces exec-allow \
    open-allow exec-timeout; do
    check "example config documents key $key" grep -qE "^#$key =( |$)" "$conf"
done
# Our own keys, with their defaults (-D prints them only when set).
for line in '#thaw-after = 0' '#kill-hook-after = 0' '#exec-output-budget = 256'; do
    check "example config documents ${line#\#}" has_line "$conf" "$line"
done
check "example config says list keys are separated by \",\"" grep -qF 'separated by ","' "$conf"
check "example config says \";\" is accepted too" grep -qF 'also accepts ";"' "$conf"
check "example config says daemonize is read as daemon" \
    grep -qE '"daemonize".*read as "daemon"|daemonize.*read as.*daemon' "$conf"

# Parse it with GLib's own GKeyFile parser when a C compiler and GLib headers
# are at hand.
if command -v cc >/dev/null && pkg-config --exists glib-2.0 2>/dev/null; then
    cat >"$tmp/keyfile.c" <<'EOF'
#include <glib.h>
#include <stdio.h>
int main(int argc, char **argv) {
    GKeyFile *file = g_key_file_new();
    GError *error = NULL;
    if (!g_key_file_load_from_file(file, argv[1], G_KEY_FILE_NONE, &error)) {
        printf("error: %s\n", error->message);
        return 1;
    }
    gchar **groups = g_key_file_get_groups(file, NULL);
    for (gchar **group = groups; *group; group++) {
        gsize count = 0;
        g_strfreev(g_key_file_get_keys(file, *group, &count, NULL));
        printf("%s %zu\n", *group, (size_t)count);
    }
    return 0;
}
EOF
    # shellcheck disable=SC2046
    if cc -o "$tmp/keyfile" "$tmp/keyfile.c" $(pkg-config --cflags --libs glib-2.0) \
        >"$tmp/cc.log" 2>&1; then
        check "GLib GKeyFile loads the example config: group general, 0 keys" \
            test "$("$tmp/keyfile" "$conf")" = 'general 0'
    else
        skip "GLib GKeyFile loads the example config" "cannot compile against GLib"
    fi
else
    skip "GLib GKeyFile loads the example config" "no cc or GLib headers"
fi

# Loading it changes nothing, and the defaults it shows are the real ones:
# ask a qemu-ga (QEMU's, or ours once built) for --dump-conf.
qemu_ga=${QEMU_GA:-/usr/sbin/qemu-ga}
if [ -x "$qemu_ga" ] && defaults=$(QGA_CONF=$tmp/no-such.conf "$qemu_ga" -D 2>/dev/null); then
    check "qemu-ga --dump-conf with the example config equals the built-in defaults" \
        test "$(QGA_CONF=$conf "$qemu_ga" -D 2>&1)" = "$defaults"
    while IFS='=' read -r key value; do
        case $key in '[general]' | '') continue ;; esac
        if [ -n "$value" ]; then line="#$key = $value"; else line="#$key ="; fi
        check "example config shows the real default of $key" has_line "$conf" "$line"
    done <<<"$defaults"
else
    skip "qemu-ga --dump-conf with the example config equals the built-in defaults" \
        "no qemu-ga with --dump-conf at $qemu_ga"
fi

finish

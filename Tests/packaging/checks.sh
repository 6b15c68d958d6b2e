# Sourced by the packaging tests (test-install.sh, test-packages.sh): the
# checkout as working directory, a scratch directory $tmp removed at exit,
# and one "ok"/"not ok" line per check, counted for the closing line that
# `finish` prints ("<n> passed, <n> failed"; status 1 if any failed).
#   . Tests/packaging/checks.sh NAME    (NAME names the scratch directory)
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[1]}")/../.." && pwd)
cd "$repo" || exit 1

passed=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qga-$1.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

pass() { echo "ok - $1"; passed=$((passed + 1)); }
fail() { echo "not ok - $1"; failed=$((failed + 1)); }
skip() { echo "ok - $1 # SKIP $2"; passed=$((passed + 1)); }

# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
    local description=$1
    shift
    if "$@"; then pass "$description"; else fail "$description"; fi
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}

#!/bin/bash
# make bench: paired start-up benchmarks of nucleus against other runtimes on
# the same bundle, in one run, reported as ratios (the machine is noisy;
# absolute times are not comparable across runs). Each comparison is one run
# of bin/lifecycle (bench/lifecycle: builds its own busybox bundle, runs the
# two runtimes in ABBA pairs; `bin/lifecycle -h` for its flags).
# Env: BIN (nucleus binary), LIFECYCLE (the tool), BENCH_PAIRS (pairs, 30).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_PAIRS:-30}
NUCLEUS=$(readlink -f "${BIN:-bin/nucleus}")
LIFECYCLE=$(readlink -f "${LIFECYCLE:-bin/lifecycle}")
[ -x "$NUCLEUS" ] || { echo "bench: $NUCLEUS not found (make build)" >&2; exit 1; }
[ -x "$LIFECYCLE" ] || { echo "bench: $LIFECYCLE not found (make bench builds it: go build -o bin/lifecycle ./bench/lifecycle)" >&2; exit 1; }

echo "== run /bin/true: nucleus vs runc"
"$LIFECYCLE" -n "$N" "$NUCLEUS" runc
echo
echo "== create/start/wait/delete: nucleus vs runc"
"$LIFECYCLE" -n "$N" -mode cswd "$NUCLEUS" runc
echo
echo "== exec /bin/true in a running container: nucleus vs runc"
"$LIFECYCLE" -n "$N" -mode exec "$NUCLEUS" runc
echo
# Nucleus's sandbox paths against runc's closest: the request to the exit
# status of /bin/true (goals, issue 13: pool <= 0.15, exec <= 0.3).
echo "== sandbox -- /bin/true (cold, agent mode) vs runc run"
"$LIFECYCLE" -n "$N" -a-mode sandbox "$NUCLEUS" runc
echo
echo "== sandbox --pool P -- /bin/true (warm pool) vs runc run"
"$LIFECYCLE" -n "$N" -a-mode pool "$NUCLEUS" runc
echo
echo "== exec /bin/true into a held sandbox (its supervisor) vs runc exec"
"$LIFECYCLE" -n "$N" -mode exec -a-mode sbexec "$NUCLEUS" runc
echo
# crun refuses hybrid cgroup hosts; -u hides cgroup2's 'unified' mount from
# both runtimes in a private mount namespace (the host's mounts are untouched).
echo "== run /bin/true: nucleus vs crun (-u)"
if command -v crun >/dev/null; then
	"$LIFECYCLE" -n "$N" -u "$NUCLEUS" crun
else
	echo "crun not installed (make deps); skipped"
fi
for extra in scripts/bench.d/*.sh; do
	[ -e "$extra" ] || continue
	echo
	echo "== $(basename "$extra" .sh)"
	NUCLEUS="$NUCLEUS" LIFECYCLE="$LIFECYCLE" N="$N" bash "$extra"
done

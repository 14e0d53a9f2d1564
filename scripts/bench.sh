#!/bin/bash
# make bench: paired start-up benchmarks against runc on the same bundle, in
# one run, reported as ratios (the machine is noisy; absolute times are not
# comparable across runs).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-../shared/bench/lifecycle-bench.sh}
N=${BENCH_PAIRS:-30}
[ -x "$BENCH" ] || { echo "bench: $BENCH not found (the shared benchmark script)" >&2; exit 1; }
NUCLEUS=$(readlink -f "${BIN:-bin/nucleus}")

echo "== run /bin/true: nucleus vs runc"
"$BENCH" -n "$N" "$NUCLEUS" runc
echo
echo "== create/start/wait/delete: nucleus vs runc"
"$BENCH" -n "$N" -m cswd "$NUCLEUS" runc
for extra in scripts/bench.d/*.sh; do
	[ -e "$extra" ] || continue
	echo
	echo "== $(basename "$extra" .sh)"
	NUCLEUS="$NUCLEUS" BENCH="$BENCH" N="$N" bash "$extra"
done

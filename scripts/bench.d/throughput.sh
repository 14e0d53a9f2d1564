#!/bin/bash
# bench.d/throughput.sh (run by `make bench`): containers per minute with two
# parallel workers, CPU time per container and peak RSS, nucleus against
# runc and against crun, in alternating rounds (bin/throughput,
# bench/throughput). crun refuses a hybrid cgroup host, so its comparison
# runs in a private mount namespace where cgroup2's 'unified' is unmounted
# (the host's mounts are untouched). Env: NUCLEUS (binary), THROUGHPUT (the
# tool), ROUNDS (rounds of each runtime, default 4).
set -euo pipefail
cd "$(dirname "$0")/../.."
NUCLEUS=${NUCLEUS:-$(readlink -f bin/nucleus)}
THROUGHPUT=${THROUGHPUT:-$(readlink -f bin/throughput)}
ROUNDS=${ROUNDS:-4}
echo "-- nucleus vs runc, 2 workers"
"$THROUGHPUT" -w 2 -rounds "$ROUNDS" "$NUCLEUS" runc
echo "-- nucleus agent mode vs runc, 2 workers"
"$THROUGHPUT" -w 2 -rounds "$ROUNDS" "$NUCLEUS --default-mode agent" runc
if command -v crun >/dev/null; then
	echo "-- nucleus vs crun, 2 workers ('unified' hidden)"
	unshare -m --propagation private sh -c 'if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi; exec "$@"' sh \
		"$THROUGHPUT" -w 2 -rounds "$ROUNDS" "$NUCLEUS" crun
else
	echo "crun not installed (make deps); skipped"
fi

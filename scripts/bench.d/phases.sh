#!/bin/bash
# bench.d/phases.sh (run by `make bench`): where a cold `run` spends its
# time, phase by phase, for nucleus (plain and agent mode) against runc on
# the same bundle, read from the kernel's tracepoints by bin/phases
# (bench/phases). Env: NUCLEUS (binary), PHASES (the tool), N (runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
NUCLEUS=${NUCLEUS:-$(readlink -f bin/nucleus)}
PHASES=${PHASES:-$(readlink -f bin/phases)}
N=${N:-30}
echo "-- nucleus vs runc"
"$PHASES" -n "$N" "$NUCLEUS" runc
echo "-- nucleus agent mode vs runc"
"$PHASES" -n "$N" "$NUCLEUS --default-mode agent" runc

#!/bin/bash
# bench.d/gvisor.sh (run by `make bench`): `run /bin/true` with nucleus's
# gVisor engine against plain runsc on the same bundle, paired in ABBA
# order by bin/lifecycle (bench/lifecycle); the ratio is the cost of the
# handoff (target: <= 1.05). Both use ptrace and --network=none (the
# bench's config has a new network namespace without a path, which nucleus
# maps to --network=none; plain runsc needs it said). Env: NUCLEUS (binary),
# LIFECYCLE (the tool), N (pairs).
set -euo pipefail
cd "$(dirname "$0")/../.."
NUCLEUS=${NUCLEUS:-$(readlink -f bin/nucleus)}
LIFECYCLE=${LIFECYCLE:-$(readlink -f bin/lifecycle)}
N=${N:-30}
command -v runsc >/dev/null || { echo "gvisor.sh: runsc not installed (make deps); skipped"; exit 0; }
RUNSC=$(command -v runsc)
echo "runsc: $($RUNSC --version 2>&1 | head -1), platform ptrace"
"$LIFECYCLE" -n "$N" "$NUCLEUS --engine=gvisor" "$RUNSC --network=none --platform=ptrace"

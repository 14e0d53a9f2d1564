#!/bin/bash
# bench.d/policy.sh (run by `make bench`): agent mode's cost. `run /bin/true`
# under --default-mode agent against runc and against nucleus's own plain
# run, on the same bundle, paired by bin/lifecycle. The last comparison
# puts the bundle under a 0700 parent (-private, what mktemp -d makes): the
# rootfs is staged under the state dir, so agent mode keeps its user
# namespace there too and should cost the same. Env: NUCLEUS (binary),
# LIFECYCLE (the tool), N (pairs).
set -euo pipefail
cd "$(dirname "$0")/../.."
NUCLEUS=${NUCLEUS:-$(readlink -f bin/nucleus)}
LIFECYCLE=${LIFECYCLE:-$(readlink -f bin/lifecycle)}
N=${N:-30}
echo "-- agent mode vs runc"
"$LIFECYCLE" -n "$N" "$NUCLEUS --default-mode agent" runc
echo "-- agent mode vs nucleus plain"
"$LIFECYCLE" -n "$N" "$NUCLEUS --default-mode agent" "$NUCLEUS"
echo "-- agent mode vs nucleus plain, bundle under a 0700 parent (-private)"
"$LIFECYCLE" -n "$N" -private "$NUCLEUS --default-mode agent" "$NUCLEUS"

#!/bin/bash
# Agent mode's cost: `run /bin/true` under --default-mode agent against
# runc and against nucleus's own plain run, on the same bundle, paired.
# (The bench bundle lives in a 0700 temp dir, which the sandbox's user
# namespace cannot reach, so this measures agent mode without userns:
# seccomp, Landlock pre-exec, caps, mount audit.)
set -euo pipefail
: "${NUCLEUS:?} ${BENCH:?} ${N:=30}"
echo "-- agent mode vs runc"
"$BENCH" -n "$N" "$NUCLEUS --default-mode agent" runc 2>&1 | grep -v "isolation step not applied"
echo "-- agent mode vs nucleus plain"
"$BENCH" -n "$N" "$NUCLEUS --default-mode agent" "$NUCLEUS" 2>&1 | grep -v "isolation step not applied"

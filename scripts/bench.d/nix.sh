#!/bin/bash
# bench.d/nix.sh (run by `make bench`): nucleus bundle cold (output already
# built: flake metadata + nix build eval + path-info) and warm (cache hit,
# no Nix), then `run` of the bundled entrypoint, nucleus vs runc on the same
# bundle, paired in ABBA order by bin/lifecycle -bundle. Env: NUCLEUS
# (binary), LIFECYCLE (the tool), N (pairs).
set -euo pipefail
cd "$(dirname "$0")/../.."
NUCLEUS=${NUCLEUS:-$(readlink -f bin/nucleus)}
LIFECYCLE=${LIFECYCLE:-$(readlink -f bin/lifecycle)}
N=${N:-30}
command -v nix >/dev/null || { echo "nix.sh: nix not installed (make deps); skipped"; exit 0; }
TMP=$(mktemp -d /tmp/nix-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# The bundle's config is planned with a user namespace: runc's unprivileged
# root must reach the rootfs (mktemp -d makes 0700).
chmod 0755 "$TMP"
./scripts/nix-flake.sh "$TMP/flake" >/dev/null
REF=$TMP/flake#agent-example
CACHE=$TMP/cache
"$NUCLEUS" bundle "$REF" -o "$TMP/bundle" --cache-dir "$CACHE" >/dev/null   # build once

now() { echo "${EPOCHREALTIME/./}"; }
# stats FILE: min/median/p90 of microsecond values, printed in ms.
stats() { sort -n "$1" | awk '{v[NR]=$1} END {printf "min %.2f ms, median %.2f ms, p90 %.2f ms (n=%d)", v[1]/1000, v[int((NR+1)/2)]/1000, v[int(0.9*(NR-1))+1]/1000, NR}'; }
median() { sort -n "$1" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

: > "$TMP/cold"; : > "$TMP/warm"
for ((i = 0; i < N; i++)); do
	t0=$(now); "$NUCLEUS" bundle "$REF" -o "$TMP/b-cold" --cache-dir "$CACHE" --no-cache >/dev/null; t1=$(now)
	echo $((t1 - t0)) >> "$TMP/cold"
	t0=$(now); "$NUCLEUS" bundle "$REF" -o "$TMP/b-warm" --cache-dir "$CACHE" >/dev/null; t1=$(now)
	echo $((t1 - t0)) >> "$TMP/warm"
done
echo "bundle cold (built output; nix metadata + build + path-info): $(stats "$TMP/cold")"
echo "bundle warm (cache hit, no nix):                           $(stats "$TMP/warm")"
awk -v c="$(median "$TMP/cold")" -v w="$(median "$TMP/warm")" 'BEGIN {printf "cold/warm ratio of medians: %.1f\n", c/w}'
: > "$TMP/verify"
for ((i = 0; i < N; i++)); do
	t0=$(now); "$NUCLEUS" verify "$TMP/bundle" >/dev/null; t1=$(now); echo $((t1 - t0)) >> "$TMP/verify"
done
echo "verify (NAR hash of the ~2 MB closure + config):           $(stats "$TMP/verify")"

# run the bundled entrypoint: nucleus vs runc on the same (Nix) bundle,
# paired in ABBA order by bin/lifecycle.
echo "run of the bundled entrypoint (agent-example, $(grep -c '"path"' "$TMP/bundle/attestation.json") store paths bound):"
"$LIFECYCLE" -n "$N" -bundle "$TMP/bundle" "$NUCLEUS" runc

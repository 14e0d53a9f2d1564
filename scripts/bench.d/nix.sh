#!/bin/bash
# bench.d/nix.sh (run by `make bench`): nucleus bundle cold (output already
# built: flake metadata + nix build eval + path-info) and warm (cache hit,
# no Nix), then `run` of the bundled entrypoint, nucleus vs runc on the same
# bundle, paired in ABBA order. Env: NUCLEUS (binary), N (pairs).
set -euo pipefail
cd "$(dirname "$0")/../.."
NUCLEUS=${NUCLEUS:-$(readlink -f bin/nucleus)}
N=${N:-30}
command -v nix >/dev/null || { echo "nix.sh: nix not installed (make deps); skipped"; exit 0; }
TMP=$(mktemp -d /tmp/nix-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
./scripts/nix-flake.sh "$TMP/flake" >/dev/null
REF=$TMP/flake#agent-example
CACHE=$TMP/cache
mkdir -p "$TMP/st-a" "$TMP/st-b"
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

# run the bundled entrypoint: nucleus vs runc, same bundle, ABBA pairs.
life() { # life A|B id -> DT (us)
	local t0 t1
	t0=$(now)
	if [[ $1 == A ]]; then
		"$NUCLEUS" --root "$TMP/st-a" run --bundle "$TMP/bundle" "$2" </dev/null >/dev/null
	else
		runc --root "$TMP/st-b" run --bundle "$TMP/bundle" "$2" </dev/null >/dev/null
	fi
	t1=$(now); DT=$((t1 - t0))
}
for i in 1 2 3; do life A "nix-wa$i"; life B "nix-wb$i"; done
: > "$TMP/pairs"
for ((i = 1; i <= N; i++)); do
	if ((i % 2)); then life A "nix-a$i"; a=$DT; life B "nix-b$i"; b=$DT
	else life B "nix-b$i"; b=$DT; life A "nix-a$i"; a=$DT; fi
	echo "$a $b" >> "$TMP/pairs"
done
NP=$(grep -c "\"path\"" "$TMP/bundle/attestation.json") awk '{a[NR]=$1; b[NR]=$2; r[NR]=$1/$2}
	function med(x, n,   i, j, t, s) { for (i = 1; i <= n; i++) s[i] = x[i]
		for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
		return (n % 2) ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2 }
	END { ma = med(a, NR); mb = med(b, NR); np = ENVIRON["NP"]
		printf "run of the bundled entrypoint (agent-example, %d store paths bound): nucleus median %.2f ms, runc median %.2f ms\n", np, ma / 1000, mb / 1000
		printf "nucleus/runc ratio of medians: %.3f   median of pair ratios: %.3f (pairs %d)\n", ma / mb, med(r, NR), NR }' "$TMP/pairs"

#!/bin/bash
# bench.d/list.sh (run by `make bench`, alone by `make bench-list`): `list`
# over COUNT (300) created containers in one root, nucleus against runc
# (each on its own root, the same busybox bundle), ROUNDS alternating calls
# each; prints the medians and nucleus's time as a multiple of runc's (the
# goal, issue 15: under 2), then deletes every container.
# Env: NUCLEUS (binary), COUNT, ROUNDS.
set -euo pipefail
cd "$(dirname "$0")/../.."
NUCLEUS=${NUCLEUS:-$(readlink -f bin/nucleus)}
COUNT=${COUNT:-300}
ROUNDS=${ROUNDS:-20}
command -v runc >/dev/null || { echo "-- runc not installed (make deps); skipped"; exit 0; }
work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
	for i in $(seq "$COUNT"); do
		"$NUCLEUS" --root "$work/n" delete --force "lbn$$-$i" 2>/dev/null || true
		runc --root "$work/r" delete --force "lbr$$-$i" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/b/rootfs/bin"
cp "$(command -v busybox)" "$work/b/rootfs/bin/busybox"
ln -s busybox "$work/b/rootfs/bin/sleep"
(cd "$work/b" && "$NUCLEUS" spec)
python3 - "$work/b/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["process"]["terminal"] = False; c["process"]["args"] = ["sleep", "100000"]
json.dump(c, open(sys.argv[1], "w"))
PY
echo "-- creating $COUNT containers on each runtime"
for i in $(seq "$COUNT"); do
	"$NUCLEUS" --root "$work/n" create --bundle "$work/b" "lbn$$-$i" </dev/null >/dev/null
	runc --root "$work/r" create --bundle "$work/b" "lbr$$-$i" </dev/null >/dev/null
done
python3 - "$NUCLEUS" "$work" "$ROUNDS" "$COUNT" <<'PY'
import statistics, subprocess, sys, time
nucleus, work, rounds, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cmds = {"nucleus": [nucleus, "--root", work + "/n", "list"], "runc": ["runc", "--root", work + "/r", "list"]}
times = {k: [] for k in cmds}
for r in range(rounds):
    for k in (("nucleus", "runc") if r % 2 == 0 else ("runc", "nucleus")):
        t = time.perf_counter()
        out = subprocess.run(cmds[k], check=True, capture_output=True).stdout
        times[k].append(time.perf_counter() - t)
        lines = out.decode().splitlines()[1:]
        if len(lines) != count or any(" created " not in l for l in lines):
            sys.exit(f"{k} list: {len(lines)} containers, want {count} created")
m = {k: statistics.median(v) for k, v in times.items()}
print(f"-- list of {count} containers, median of {rounds}: nucleus {m['nucleus']*1000:.1f} ms, runc {m['runc']*1000:.1f} ms, nucleus/runc {m['nucleus']/m['runc']:.2f}")
PY

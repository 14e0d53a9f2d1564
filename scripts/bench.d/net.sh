#!/bin/bash
# bench.d/net.sh (run by `make bench`): what --net bridge costs.
# 1. Start-up: `run /bin/true` in agent mode with --net bridge (veth, lease,
#    nftables chain and sets made and removed per run) against --net none,
#    paired by bin/lifecycle.
# 2. Throughput: iperf3 (Debian's) TCP from a bridged container's network
#    namespace to a server in a network namespace this script makes (the
#    path crosses the container's veth, the host's forward hook with the
#    container's chain, masquerade and a second veth), against the same
#    client and server on the host's loopback. Only hosts the script owns
#    are sent packets.
# Env: NUCLEUS (binary), LIFECYCLE (the tool), N (pairs), SECS (iperf3 time).
set -euo pipefail
cd "$(dirname "$0")/../.."
NUCLEUS=${NUCLEUS:-$(readlink -f bin/nucleus)}
LIFECYCLE=${LIFECYCLE:-$(readlink -f bin/lifecycle)}
N=${N:-30}
SECS=${SECS:-5}
echo "-- agent mode: --net bridge vs --net none"
"$LIFECYCLE" -n "$N" "$NUCLEUS --default-mode agent --default-net bridge" "$NUCLEUS --default-mode agent --default-net none"

if ! command -v iperf3 >/dev/null; then
	echo "-- iperf3: not installed (apt-get install iperf3); skipped"
	exit 0
fi
work=$(mktemp -d)
chmod 755 "$work" # a user namespace's root must reach the staged rootfs
ns=nbench$$
root=$work/root
cleanup() {
	[ -n "${srv:-}" ] && kill "$srv" 2>/dev/null || true
	"$NUCLEUS" --root "$root" delete --force nbench 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	ip link del "nbh$$" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
json_bps() { python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])'; }

echo "-- iperf3 TCP, ${SECS}s each"
iperf3 -s -B 127.0.0.1 -p 15201 -1 >/dev/null & srv=$!
sleep 0.3
lo=$(iperf3 -c 127.0.0.1 -p 15201 -t "$SECS" -J | json_bps)
wait "$srv" || true; srv=

ip netns add "$ns"
ip link add "nbh$$" type veth peer name nbs netns "$ns"
ip addr add 198.19.250.1/24 dev "nbh$$"; ip link set "nbh$$" up
ip -n "$ns" addr add 198.19.250.2/24 dev nbs; ip -n "$ns" link set nbs up; ip -n "$ns" link set lo up
ip -n "$ns" route add default via 198.19.250.1
ip netns exec "$ns" iperf3 -s -B 198.19.250.2 -p 15201 -1 >/dev/null & srv=$!
mkdir -p "$work/b/rootfs/bin" "$root"
cp "$(command -v busybox)" "$work/b/rootfs/bin/busybox"
ln -s busybox "$work/b/rootfs/bin/sleep"
(cd "$work/b" && "$NUCLEUS" spec)
python3 - "$work/b/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["process"]["terminal"] = False; c["process"]["args"] = ["sleep", "600"]
json.dump(c, open(sys.argv[1], "w"))
PY
"$NUCLEUS" --root "$root" sandbox --detach --bundle "$work/b" --id nbench --net bridge --allow 198.19.250.2/32:15201/tcp >/dev/null
pid=$("$NUCLEUS" --root "$root" state nbench | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
sleep 0.3
br=$(nsenter -t "$pid" -n iperf3 -c 198.19.250.2 -p 15201 -t "$SECS" -J | json_bps)
wait "$srv" || true; srv=
python3 - "$lo" "$br" <<'PY'
import sys
lo, br = float(sys.argv[1]), float(sys.argv[2])
print(f"loopback {lo/1e9:.2f} Gbit/s, bridge {br/1e9:.2f} Gbit/s, bridge/loopback {br/lo:.2f}")
PY

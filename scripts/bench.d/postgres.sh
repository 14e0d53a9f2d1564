#!/bin/bash
# bench.d/postgres.sh (run by `make bench`): Debian's PostgreSQL 15 as a
# service in `nucleus run --mode production` (user namespace, Landlock, the
# built-in seccomp allowlist plus what PostgreSQL needs, pinned; --net host;
# the data dir a bind-rw workspace) against the same server binary and
# settings on the host, and under --engine gvisor (no isolation mode: this
# runsc cannot enforce production's kill-by-default profile). pgbench -S
# (SELECT only) and pgbench (TPC-B-like) run against each from the host,
# alternating host/container in ABBA order, in one run; the report is TPS
# and average latency as container/host ratios (goal: TPS >= 0.98).
# Env: NUCLEUS (binary), PG_SECS (seconds per pgbench run, 10), PG_ROUNDS
# (ABBA rounds, 2), PG_CLIENTS (4), PG_SCALE (pgbench scale, 10),
# PG_GVISOR (0 skips gVisor).
set -euo pipefail
cd "$(dirname "$0")/../.."
NUCLEUS=${NUCLEUS:-$(readlink -f bin/nucleus)}
PG=/usr/lib/postgresql/15/bin
SECS=${PG_SECS:-10}
ROUNDS=${PG_ROUNDS:-2}
CLIENTS=${PG_CLIENTS:-4}
SCALE=${PG_SCALE:-10}
for need in "$PG/postgres" "$PG/initdb" "$PG/pg_ctl" "$(command -v pgbench || echo pgbench)"; do
	[ -x "$need" ] || { echo "postgres.sh: $need not installed (apt-get install postgresql); skipped"; exit 0; }
done
id postgres >/dev/null 2>&1 || { echo "postgres.sh: no postgres user on the host (apt-get install postgresql); skipped"; exit 0; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HOST_PORT=$(free_port)
NATIVE_PORT=$(free_port)
GVISOR_PORT=$(free_port)

work=$(mktemp -d)
chmod 755 "$work" # a user namespace's root must reach the staged rootfs
root=$work/root
hostcgs=()
cleanup() {
	runuser -u postgres -- "$PG/pg_ctl" -D "$work/host/pg" stop -m fast >/dev/null 2>&1 || true
	for c in pgb-native-$$ pgb-gvisor-$$ pgb-init-$$ pgb-ginit-$$; do "$NUCLEUS" --root "$root" delete --force "$c" >/dev/null 2>&1 || true; done
	rm -rf "$work"
	for cg in "${hostcgs[@]}"; do rmdir "$cg" 2>/dev/null || true; done
}
trap cleanup EXIT

# The rootfs: busybox, the host's /usr (and /lib, /lib64 through it)
# read-only, a passwd naming uid 1000 postgres.
rfs=$work/b/rootfs
mkdir -p "$rfs"/{bin,proc,dev,tmp,etc,usr,pgdata} "$root"
cp "$(command -v busybox)" "$rfs/bin/busybox"
ln -s busybox "$rfs/bin/sh"
ln -s usr/lib "$rfs/lib"
ln -s usr/lib64 "$rfs/lib64"
printf 'root:x:0:0:root:/:/bin/sh\npostgres:x:1000:1000:postgres:/tmp:/bin/sh\n' >"$rfs/etc/passwd"
printf 'root:x:0:\npostgres:x:1000:\n' >"$rfs/etc/group"
(cd "$work/b" && "$NUCLEUS" spec)
mkdir -p "$work/bg"
# Production mode refuses sysfs on the host's network namespace; the
# gVisor bundle binds its data dir itself (its engine refuses a writable
# workspace).
python3 - "$work/b/config.json" "$work/bg/config.json" "$rfs" "$work/gdata" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"].update(terminal=False, user={"uid": 1000, "gid": 1000},
                    env=["PATH=/usr/lib/postgresql/15/bin:/usr/bin:/bin", "LC_ALL=C", "HOME=/tmp"])
c["mounts"] = [m for m in c["mounts"] if m["type"] != "sysfs"]
c["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro", "nosuid", "nodev"]})
json.dump(c, open(sys.argv[1], "w"))
c["root"]["path"] = sys.argv[3]
c["mounts"].append({"destination": "/pgdata", "type": "bind", "source": sys.argv[4], "options": ["rbind", "rw", "nosuid", "nodev"]})
json.dump(c, open(sys.argv[2], "w"))
PY
set_args() { # bundle-config args...
	python3 - "$@" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["process"]["args"] = sys.argv[2:]; json.dump(c, open(sys.argv[1], "w"))
PY
}
# The built-in allowlist plus System V shared memory (the postmaster's
# interlock), I/O priority, write-back hints and prctl(PR_GET_SECUREBITS).
"$NUCLEUS" policy show 2>/dev/null | python3 -c '
import json, sys
p = json.load(sys.stdin)
p["syscalls"].append({"names": ["shmget", "shmat", "shmdt", "shmctl", "getpriority", "setpriority", "pwritev", "sync_file_range"], "action": "SCMP_ACT_ALLOW"})
p["syscalls"].append({"names": ["prctl"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 27, "op": "SCMP_CMP_EQ"}]})
json.dump(p, sys.stdout)' >"$work/seccomp.json"
sum=$(sha256sum "$work/seccomp.json" | cut -d' ' -f1)
mkdir -p "$work/ctr" "$work/gdata" "$work/host"
chown 1000:1000 "$work/ctr" "$work/gdata"
chown postgres: "$work/host"
PROD=(--mode production --memory 2G --seccomp-profile "$work/seccomp.json" --seccomp-profile-sha256 "$sum"
	--workspace "$work/ctr:/workspace:bind-rw" --net host)
INITDB=(initdb --no-locale -E UTF8 -U postgres -A trust)
SERVER=(postgres -k /tmp -c listen_addresses=127.0.0.1)

# The host's server runs in cgroups of its own beside the container's
# (every hierarchy the container gets one in), as the container's does:
# on a loaded machine the scheduler weighs a cgroup as a whole against
# each task of the root cgroup, which would favour the host's server
# several times over.
hostcgs=()
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
	dirs=(/sys/fs/cgroup)
else
	dirs=(/sys/fs/cgroup/{cpu,cpuacct,memory,blkio,pids,cpuset})
fi
for cg in "${dirs[@]}"; do
	if [ -e "$cg/cgroup.procs" ] && mkdir "$cg/pgb-host-$$" 2>/dev/null; then hostcgs+=("$cg/pgb-host-$$"); fi
done
for cg in "${hostcgs[@]}"; do # cpuset needs its cpus and mems before a task
	[ ! -e "$cg/cpuset.cpus" ] || { cat "$(dirname "$cg")/cpuset.cpus" >"$cg/cpuset.cpus" && cat "$(dirname "$cg")/cpuset.mems" >"$cg/cpuset.mems"; }
done
echo "-- setting up (initdb, pgbench -i -s $SCALE; the host's server in ${#hostcgs[@]} cgroups of its own)"
runuser -u postgres -- "$PG/initdb" -D "$work/host/pg" "${INITDB[@]:1}" >/dev/null
CGS="${hostcgs[*]}" sh -c 'for cg in $CGS; do echo $$ >"$cg/cgroup.procs"; done; exec "$@"' sh \
	runuser -u postgres -- "$PG/pg_ctl" -D "$work/host/pg" -l "$work/host/server.log" -w \
	-o "-k $work/host -c listen_addresses=127.0.0.1 -p $HOST_PORT" start >/dev/null
set_args "$work/b/config.json" "${INITDB[@]}" -D /workspace/pg
"$NUCLEUS" --root "$root" run "${PROD[@]}" --bundle "$work/b" pgb-init-$$ >/dev/null
set_args "$work/b/config.json" "${SERVER[@]}" -D /workspace/pg -p "$NATIVE_PORT"
"$NUCLEUS" --root "$root" run -d "${PROD[@]}" --bundle "$work/b" pgb-native-$$ >"$work/native.log" 2>&1
ready() { for _ in $(seq 600); do pg_isready -q -h 127.0.0.1 -p "$1" && return 0; sleep 0.1; done; echo "postgres on port $1 never came up" >&2; exit 1; }
ready "$HOST_PORT"
ready "$NATIVE_PORT"
for p in "$HOST_PORT" "$NATIVE_PORT"; do pgbench -h 127.0.0.1 -p "$p" -U postgres -i -q -s "$SCALE" postgres >/dev/null 2>&1; done

# run PORT ARGS...: one pgbench run; prints "TPS LATENCY_MS".
run() {
	local port=$1
	shift
	pgbench -h 127.0.0.1 -p "$port" -U postgres -c "$CLIENTS" -j 2 -T "$SECS" -n "$@" postgres 2>/dev/null |
		awk '/^latency average/ {lat=$4} /^tps =/ {tps=$3} END {print tps, lat}'
}
# compare NAME PORT: ABBA rounds of host vs the container on PORT, for -S
# and TPC-B; prints the sums' ratios.
compare() {
	local name=$1 port=$2
	for kind in "-S" "tpcb"; do
		local flag=()
		[ "$kind" = "-S" ] && flag=(-S)
		local out
		out=$(for _ in $(seq "$ROUNDS"); do
			echo "host $(run "$HOST_PORT" "${flag[@]}")"
			echo "ctr $(run "$port" "${flag[@]}")"
			echo "ctr $(run "$port" "${flag[@]}")"
			echo "host $(run "$HOST_PORT" "${flag[@]}")"
		done)
		python3 - "$name" "$kind" "$out" <<'PY'
import sys
name, kind, out = sys.argv[1], sys.argv[2], sys.argv[3]
r = {"host": [], "ctr": []}
for line in out.splitlines():
    who, tps, lat = line.split()
    r[who].append((float(tps), float(lat)))
def mean(xs): return sum(xs) / len(xs)
ht, ct = mean([t for t, _ in r["host"]]), mean([t for t, _ in r["ctr"]])
hl, cl = mean([l for _, l in r["host"]]), mean([l for _, l in r["ctr"]])
label = "pgbench -S (select-only)" if kind == "-S" else "pgbench (TPC-B-like)"
print(f"{name:8} {label:26} host {ht:9.0f} tps {hl:7.3f} ms | container {ct:9.0f} tps {cl:7.3f} ms | TPS ratio {ct/ht:.3f}, latency ratio {cl/hl:.3f}")
PY
	done
}
echo "-- $SECS s per run, $CLIENTS clients, $ROUNDS ABBA rounds, scale $SCALE"
compare native "$NATIVE_PORT"
"$NUCLEUS" --root "$root" kill pgb-native-$$ TERM
for _ in $(seq 300); do "$NUCLEUS" --root "$root" state pgb-native-$$ 2>/dev/null | grep -q '"stopped"' && break; sleep 0.1; done
"$NUCLEUS" --root "$root" delete --force pgb-native-$$

if [ "${PG_GVISOR:-1}" = 0 ] || ! command -v runsc >/dev/null; then
	echo "-- gvisor: skipped (PG_GVISOR=0 or runsc not installed)"
	exit 0
fi
set_args "$work/bg/config.json" "${INITDB[@]}" -D /pgdata/pg
"$NUCLEUS" --root "$root" run --engine gvisor --net host --bundle "$work/bg" pgb-ginit-$$ >/dev/null
set_args "$work/bg/config.json" "${SERVER[@]}" -D /pgdata/pg -p "$GVISOR_PORT"
"$NUCLEUS" --root "$root" run -d --engine gvisor --net host --bundle "$work/bg" pgb-gvisor-$$ >"$work/gvisor.log" 2>&1
ready "$GVISOR_PORT"
pgbench -h 127.0.0.1 -p "$GVISOR_PORT" -U postgres -i -q -s "$SCALE" postgres >/dev/null 2>&1
compare gvisor "$GVISOR_PORT"

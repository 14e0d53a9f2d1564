#!/bin/bash
# conformance.sh: runs the OCI runtime-tools validation programs and runc's
# own bats integration tests against nucleus (and, for comparison, runc and
# crun). It fetches nothing: the suites come from checkouts given in
#   RUNTIME_TOOLS  a checkout of github.com/opencontainers/runtime-tools
#   RUNC_SRC       a checkout of github.com/opencontainers/runc (main)
# Usage: scripts/conformance.sh [runtime-tools|bats|all]   (default all)
# Other settings (environment):
#   NUCLEUS        the nucleus binary (default bin/nucleus)
#   RUNTIMES       runtimes to run, of nucleus runc crun (default nucleus)
#   WORK           scratch and results dir (default build/conformance)
#   PROGRAMS       runtime-tools programs to run (default all of them)
#   BATS_FILES     runc bats files to run (default the list below)
# Results: $WORK/results/<suite>-<runtime>.txt, one line per program or
# file, and a summary at the end of the output.
set -u -o pipefail

what=${1:-all}
here=$(cd "$(dirname "$0")/.." && pwd)
NUCLEUS=$(readlink -f "${NUCLEUS:-$here/bin/nucleus}")
RUNTIMES=${RUNTIMES:-nucleus}
WORK=$(mkdir -p "${WORK:-$here/build/conformance}" && cd "${WORK:-$here/build/conformance}" && pwd)
BATS_FILES=${BATS_FILES:-create start delete kill state run exec ps list spec events pause update cgroups mounts hooks}
export PATH=$PATH:/usr/local/go/bin
export GOFLAGS=-mod=vendor GOTOOLCHAIN=local GOPROXY=off

die() { echo "conformance: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root (containers, cgroups)"
command -v go >/dev/null || die "go not found (PATH=$PATH)"
[ -x "$NUCLEUS" ] || die "NUCLEUS=$NUCLEUS: not an executable; run 'make build' first"
mkdir -p "$WORK/results" "$WORK/bin"

# runtime_bin NAME: a wrapper that runs the runtime with its own state root
# under $WORK, so nothing here meets other users' containers.
runtime_bin() {
	local name=$1 exe
	case $name in
	nucleus) exe=$NUCLEUS ;;
	runc) exe=$(command -v runc) || die "runc not found" ;;
	crun) exe=$(command -v crun) || die "crun not found" ;;
	*) die "RUNTIMES: unknown runtime $name (nucleus, runc or crun)" ;;
	esac
	{
		echo '#!/bin/sh'
		# crun 1.8 refuses the ociVersion runtime-tools writes (1.3.0:
		# "unknown version specified"); for the comparison its
		# configs say 1.0.2. An invalid version stays as it is.
		[ "$name" = crun ] && cat <<'EOF'
b=.; prev=; sub=
for a in "$@"; do
	case $prev in --bundle | -b) b=$a ;; esac
	case $a in --bundle=*) b=${a#--bundle=} ;; create | run) [ -z "$sub" ] && sub=$a ;; esac
	prev=$a
done
[ -n "$sub" ] && [ -f "$b/config.json" ] && sed -i -E 's/"ociVersion": *"1\.[0-9]+\.[0-9]+"/"ociVersion":"1.0.2"/' "$b/config.json"
EOF
		printf 'exec %s --root %s "$@"\n' "$exe" "$WORK/state-$name"
	} >"$WORK/bin/$name"
	chmod +x "$WORK/bin/$name"
	echo "$WORK/bin/$name"
}

# in_hybrid NAME CMD...: crun 1.8 takes this host's cgroup v1 + v2 hybrid
# for a v2 host when /sys/fs/cgroup/unified is mounted; it runs in a mount
# namespace of its own where it is not.
in_hybrid() {
	local name=$1
	shift
	if [ "$name" = crun ] && mountpoint -q /sys/fs/cgroup/unified; then
		unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec "$@"' sh "$@"
	else
		"$@"
	fi
}

# V1_EXTRA: the v1 controllers runtime-tools checks (linux_cgroups_hugetlb,
# _network and their relative_ twins) that a hybrid host may leave on its
# cgroup2 (hierarchy 0 in /proc/cgroups: systemd mounts no v1 hierarchy for
# them). NO_V1_EXTRA=1 runs the programs on the host's layout as it is.
V1_EXTRA="hugetlb net_cls net_prio"

# v1_unbound prints the controllers of V1_EXTRA that are enabled, on no v1
# hierarchy, on a hybrid host (v1 hierarchies under a tmpfs /sys/fs/cgroup),
# and not enabled in any cgroup2 subtree_control (the kernel moves such a
# controller to a v1 hierarchy only then).
v1_unbound() {
	[ "${NO_V1_EXTRA:-}" = 1 ] && return
	[ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] || return
	local c
	for c in $V1_EXTRA; do
		awk -v c="$c" '$1 == c && $2 == 0 && $4 == 1 { f = 1 } END { exit !f }' /proc/cgroups || continue
		if mountpoint -q /sys/fs/cgroup/unified &&
			find /sys/fs/cgroup/unified -name cgroup.subtree_control -exec grep -lw "$c" {} + 2>/dev/null | grep -q .; then
			continue
		fi
		echo "$c"
	done
}

# in_v1_ns NAME CTRLS CMD...: runs CMD in a mount namespace of its own whose
# /sys/fs/cgroup is the host's plus a v1 hierarchy for each of CTRLS (a
# space-separated list, maybe empty), the same for every runtime; for crun,
# without /sys/fs/cgroup/unified (see in_hybrid). Mounting a v1 hierarchy
# moves its controller off the host's cgroup2 while the hierarchy exists;
# the namespace's own tmpfs holds the mount points, so the host's
# /sys/fs/cgroup is not written. Afterwards every cgroup left in those
# hierarchies is emptied (its processes, the containers' own, killed) and
# removed, so that the hierarchy dies with the namespace and the kernel puts
# the controller back on cgroup2; ensure_v1_restored checks that it did.
in_v1_ns() {
	local name=$1 ctrls=$2
	shift 2
	if [ -z "$ctrls" ]; then
		in_hybrid "$name" "$@"
		return
	fi
	local unified=keep
	[ "$name" = crun ] && unified=drop
	unshare -m --propagation private sh -c '
		set -u
		ctrls=$1 unified=$2 old=$3
		shift 3
		mkdir -p "$old" && mount --rbind /sys/fs/cgroup "$old" &&
			mount -t tmpfs -o mode=755,nosuid,nodev,noexec cgroup /sys/fs/cgroup || exit 125
		for e in "$old"/*; do
			n=${e##*/}
			if [ -L "$e" ]; then cp -P "$e" /sys/fs/cgroup/; continue; fi
			[ "$n" = unified ] && [ "$unified" = drop ] && continue
			# Plain directories (a tool that wrote to a hierarchy
			# that was not mounted) are not copied.
			mountpoint -q "$e" || continue
			mkdir "/sys/fs/cgroup/$n" && mount --move "$e" "/sys/fs/cgroup/$n" || exit 125
		done
		umount -l "$old"
		# Interrupted (^C), the program stops but the clean-up below
		# still runs: a hierarchy left with a cgroup in it would keep
		# its controller off cgroup2 until reboot.
		trap : INT TERM HUP
		for c in $ctrls; do
			mkdir "/sys/fs/cgroup/$c" && mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" || {
				echo "conformance: cannot mount a v1 $c hierarchy" >&2
				rmdir "/sys/fs/cgroup/$c"
			}
		done
		"$@"
		rc=$?
		for c in $ctrls; do
			h=/sys/fs/cgroup/$c
			mountpoint -q "$h" || continue
			for try in 1 2 3 4 5 6 7 8 9 10; do
				left=$(find "$h" -mindepth 1 -depth -type d)
				[ -z "$left" ] && break
				[ "$try" = 1 ] && echo "conformance: removing cgroups left in the v1 $c hierarchy: $left" >&2
				for d in $left; do
					for pid in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
					rmdir "$d" 2>/dev/null
				done
				sleep 0.5
			done
			# The kernel frees a hierarchy when its last mount goes
			# only if the root has no child then, and a removed
			# cgroup stays a child until the kernel has released it:
			# wait for the count of cgroups to be the root alone.
			for try in $(seq 50); do
				awk -v c="$c" '\''$1 == c && $3 == 1 { f = 1 } END { exit !f }'\'' /proc/cgroups && break
				sleep 0.2
			done
			umount "$h"
		done
		exit $rc
	' sh "$ctrls" "$unified" "$WORK/cgroup-host" "$@"
}

# ensure_v1_restored CTRLS: after in_v1_ns, the kernel frees a v1 hierarchy
# with no cgroups left in the background; until then the controller is not
# back on cgroup2. Waits for that. A hierarchy that outlived its mount (a
# cgroup was still being released at the unmount) is mounted again, in a
# namespace of its own, and unmounted once it holds no cgroup; if it still
# does, the run stops and says so.
ensure_v1_restored() {
	local c i
	for c in $1; do
		for i in $(seq 100); do
			awk -v c="$c" '$1 == c && $2 == 0 { f = 1 } END { exit !f }' /proc/cgroups && continue 2
			[ "$i" = 25 ] || [ "$i" = 50 ] || [ "$i" = 75 ] || { sleep 0.2; continue; }
			mkdir -p "$WORK/cgroup-repair"
			unshare -m --propagation private sh -c '
				mount -t cgroup -o "$1" cgroup "$2" || exit 1
				left=$(find "$2" -mindepth 1 -type d)
				[ -n "$left" ] && echo "conformance: cgroups left in the v1 $1 hierarchy: $left" >&2
				for try in $(seq 50); do
					awk -v c="$1" '\''$1 == c && $3 == 1 { f = 1 } END { exit !f }'\'' /proc/cgroups && break
					sleep 0.2
				done
				umount "$2"' sh "$c" "$WORK/cgroup-repair"
		done
		die "the v1 $c hierarchy outlived the run: /proc/cgroups shows $(awk -v c="$c" '$1 == c' /proc/cgroups) (a cgroup in it could not be removed)"
	done
}

# clean_tmp removes the programs' bundles. linux_rootfs_propagation's
# "shared" rootfs propagates the container's mounts (proc, sys, dev) back
# under its bundle on the host, where they outlive the container (runc's
# too): they are unmounted first, and rm never crosses into a mount.
clean_tmp() {
	local m
	awk -v d="$WORK/tmp/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
		umount -l "$m"
	done
	rm -rf --one-file-system "${WORK:?}/tmp"
}

run_runtime_tools() {
	[ -n "${RUNTIME_TOOLS:-}" ] || die "set RUNTIME_TOOLS to a runtime-tools checkout (make conformance RUNTIME_TOOLS=/path)"
	[ -f "$RUNTIME_TOOLS/validation/util/test.go" ] || die "RUNTIME_TOOLS=$RUNTIME_TOOLS: not a runtime-tools checkout (no validation/util/test.go)"
	[ -d "$RUNTIME_TOOLS/vendor" ] || die "RUNTIME_TOOLS=$RUNTIME_TOOLS: no vendor/ directory; the build is offline"
	local src=$WORK/runtime-tools
	# Built in a copy: the checkout stays as given.
	if [ ! -x "$src/runtimetest" ] || [ "$RUNTIME_TOOLS/Makefile" -nt "$src/runtimetest" ]; then
		echo "== building runtime-tools validation programs (GOFLAGS=$GOFLAGS)"
		rm -rf "$src" && cp -a "$RUNTIME_TOOLS" "$src" || die "copy $RUNTIME_TOOLS"
		make -C "$src" runtimetest validation-executables >"$WORK/runtime-tools-build.log" 2>&1 ||
			die "runtime-tools build failed, see $WORK/runtime-tools-build.log"
	fi
	local progs=${PROGRAMS:-$(cd "$src/validation" && for d in */; do d=${d%/}; [ -f "$d/$d.go" ] && echo "$d"; done)}
	local name extra
	extra=$(v1_unbound | tr '\n' ' ')
	[ -n "$extra" ] && echo "== v1 hierarchies mounted for each program (in its own mount namespace): $extra"
	for name in $RUNTIMES; do
		local rt out pass=0 total=0 p rc log
		rt=$(runtime_bin "$name")
		out=$WORK/results/runtime-tools-$name.txt
		mkdir -p "$WORK/logs/runtime-tools-$name"
		: >"$out"
		echo "== runtime-tools with $name"
		for p in $progs; do
			log=$WORK/logs/runtime-tools-$name/$p.log
			# The programs make bundles under TMPDIR and leave some
			# behind when they fail: give them one to remove.
			mkdir -p "$WORK/tmp"
			(cd "$src" && TMPDIR=$WORK/tmp RUNTIME=$rt in_v1_ns "$name" "$extra" timeout 180 "./validation/$p/$p.t") >"$log" 2>&1
			rc=$?
			ensure_v1_restored "$extra"
			clean_tmp
			total=$((total + 1))
			# A program passes when it exits 0 with no "not ok"; the
			# programs that report only failures (hooks, poststop...)
			# print a YAML block outside any test when they fail.
			if [ $rc -eq 0 ] && ! grep -q '^not ok' "$log" && { grep -q '^ok' "$log" || ! grep -q '^  ---' "$log"; }; then
				pass=$((pass + 1))
				echo "PASS $p" | tee -a "$out"
			else
				echo "FAIL $p (exit $rc, log $log)" | tee -a "$out"
			fi
		done
		echo "runtime-tools $name: $pass of $total programs pass" | tee -a "$out" "$WORK/results/summary.txt"
	done
}

# What of runc's bats files is changed, in the copy the tests run from.
# BATS_EDIT: assertions that only pin runc's own name or its wording of a
# message, which another runtime has no reason to copy. Each line (matched
# whole, indentation aside) becomes the replacement, a no-op when that is
# empty; the rest of its test still runs.
# Format: file|the line, exactly as in the file|replacement|reason
BATS_EDIT="
kill.bats|[[ \"\$output\" == *\"container not running\"* ]]||runc's wording of the error for a stopped container (nucleus: 'container is not running')
cgroups.bats|[[ \"\$output\" == *\"cannot exec in a paused container\"* ]]||runc's wording (nucleus: 'cannot exec in container ID: it is paused')
create.bats|grep -Ex \"/runc\" <<<\"\$target\" \|\||grep -Ex \"/runc\|/\$(basename \"\$RUNC\")\" <<<\"\$target\" \|\||the fd leak check allows the sealed runtime binary only under the name runc
"
# BATS_SKIP: whole tests that cannot run here. Format: file|test name|reason
BATS_SKIP="
spec.bats|spec validator|clones runtime-spec from GitHub and runs go mod tidy: needs the network
"

prepare_bats() {
	[ -n "${RUNC_SRC:-}" ] || die "set RUNC_SRC to a runc checkout (make conformance RUNC_SRC=/path)"
	[ -f "$RUNC_SRC/tests/integration/helpers.bash" ] || die "RUNC_SRC=$RUNC_SRC: not a runc checkout (no tests/integration/helpers.bash)"
	[ -d "$RUNC_SRC/vendor" ] || die "RUNC_SRC=$RUNC_SRC: no vendor/ directory; the build is offline"
	command -v bats >/dev/null || die "bats not found: apt-get install bats"
	command -v tini >/dev/null || die "tini not found: apt-get install tini"
	command -v gawk >/dev/null || die "gawk not found (runc's helpers use it): apt-get install gawk"
	command -v jq >/dev/null || die "jq not found (runc's helpers use it): apt-get install jq"
	command -v script >/dev/null || die "script not found: apt-get install bsdutils"
	local bb
	bb=$(command -v busybox) && file -L "$bb" | grep -q 'statically linked' || die "no static busybox: apt-get install busybox-static"
	local t=$WORK/runc-tests
	rm -rf "$t" && cp -a "$RUNC_SRC/tests" "$t" || die "copy $RUNC_SRC/tests"
	# The helpers the tests start (recvtty for the console, ...), built
	# from the checkout's vendored modules.
	local cmd
	for cmd in recvtty sd-helper seccompagent fs-idmap pidfd-kill remap-rootfs key_label; do
		[ -d "$RUNC_SRC/tests/cmd/$cmd" ] || continue
		(cd "$RUNC_SRC" && go build -o "$t/cmd/_bin/$cmd" "./tests/cmd/$cmd") >>"$WORK/runc-tests-build.log" 2>&1 ||
			die "building runc's tests/cmd/$cmd failed, see $WORK/runc-tests-build.log"
	done
	# Offline images: get-images.sh downloads nothing for a file that
	# exists. Both are a busybox-static root (the Debian one is used by no
	# file run here).
	local img=$WORK/busybox-root
	rm -rf "$img" && mkdir -p "$img/bin" "$img/etc" "$img/tmp" "$img/root" "$img/proc" "$img/sys" "$img/dev" "$img/var/run"
	cp "$bb" "$img/bin/busybox"
	local a
	for a in $("$bb" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$img/bin/$a"
	done
	mkdir -p "$img/usr" && ln -s ../bin "$img/usr/bin" && ln -s bin "$img/sbin"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$img/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$img/etc/group"
	chmod 1777 "$img/tmp"
	local arch
	arch=$(go env GOARCH)
	tar -C "$img" -cJf "$t/integration/testdata/busybox-$arch.tar.xz" . || die "busybox image"
	cp "$t/integration/testdata/busybox-$arch.tar.xz" "$t/integration/testdata/debian-$arch.tar.xz"
	# The edit and skip lists, applied to the copy. A "|" inside a field
	# is written "\|".
	local file name repl reason
	while IFS=$'\x1f' read -r file name repl reason; do
		[ -n "$file" ] || continue
		awk -v n="$name" -v r="$repl" -v why="$reason" '
			{ l = $0; sub(/^[ \t]+/, "", l) }
			l == n { ind = substr($0, 1, length($0) - length(l)); print ind (r == "" ? ":" : r) " # conformance edit: " why; hit = 1; next }
			{ print }
			END { exit !hit }' "$t/integration/$file" >"$t/integration/$file.new" ||
			die "edit list: no line \"$name\" in $file (runc changed?)"
		mv "$t/integration/$file.new" "$t/integration/$file"
	done < <(sed -e 's/\\|/\x1e/g' -e 's/|/\x1f/g' -e 's/\x1e/|/g' <<<"$BATS_EDIT")
	while IFS='|' read -r file name reason; do
		[ -n "$file" ] || continue
		grep -qF "@test \"$name\" {" "$t/integration/$file" || die "skip list: no test \"$name\" in $file (runc changed?)"
		awk -v n="@test \"$name\" {" -v r="$reason" '{print} index($0, n) == 1 {print "\tskip \"conformance skip list: " r "\""}' \
			"$t/integration/$file" >"$t/integration/$file.new" && mv "$t/integration/$file.new" "$t/integration/$file"
	done <<<"$BATS_SKIP"
}

run_bats() {
	prepare_bats
	local name
	for name in $RUNTIMES; do
		local rt out f log pass=0 fail=0 skip=0 p x s
		case $name in
		nucleus) rt=$NUCLEUS ;;
		*) rt=$(command -v "$name") || die "$name not found" ;;
		esac
		out=$WORK/results/bats-$name.txt
		mkdir -p "$WORK/logs/bats-$name"
		: >"$out"
		echo "== runc bats with $name"
		for f in $BATS_FILES; do
			log=$WORK/logs/bats-$name/$f.tap
			# tini -s: a subreaper that reaps at once; this VM's PID 1
			# reaps late, and the tests wait for exits. script(1): a
			# terminal, as runc's CI has (runc spec sets terminal: true
			# and many tests run such a config attached).
			(cd "$WORK/runc-tests/integration" && RUNC=$rt in_hybrid "$name" timeout 1200 \
				script -qefc "tini -s -- bats --tap $f.bats" /dev/null) </dev/null >"$log" 2>&1
			tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"
			s=$(grep -Eic '^ok [0-9]+ .*# skip' "$log")
			p=$(grep -Ec '^ok [0-9]+' "$log")
			p=$((p - s))
			x=$(grep -Ec '^not ok [0-9]+' "$log")
			pass=$((pass + p)) fail=$((fail + x)) skip=$((skip + s))
			printf '%-8s pass %3d  fail %3d  skip %3d\n' "$f" "$p" "$x" "$s" | tee -a "$out"
		done
		echo "runc bats $name: $pass pass, $fail fail, $skip skipped" | tee -a "$out" "$WORK/results/summary.txt"
	done
}

# Both checkouts are checked before anything runs.
case $what in
runtime-tools | all) [ -n "${RUNTIME_TOOLS:-}" ] || die "set RUNTIME_TOOLS to a runtime-tools checkout (make conformance RUNTIME_TOOLS=/path RUNC_SRC=/path)" ;;&
bats | all) [ -n "${RUNC_SRC:-}" ] || die "set RUNC_SRC to a runc checkout (make conformance RUNTIME_TOOLS=/path RUNC_SRC=/path)" ;;
esac
: >"$WORK/results/summary.txt"
case $what in
runtime-tools) run_runtime_tools ;;
bats) run_bats ;;
all) run_runtime_tools && run_bats ;;
*) die "usage: $0 [runtime-tools|bats|all]" ;;
esac
echo "== summary"
cat "$WORK/results/summary.txt"

#!/bin/sh
# nix-flake.sh [DIR]: make the repository's flake buildable offline.
#
# The flake has no inputs and no nixpkgs; its only builder is a static
# busybox at nix/bb/busybox, copied here from Debian's busybox-static and
# never committed (.gitignore). In a git work tree Nix sees only tracked
# files, so the ignored busybox is invisible to `nix build .#...`: with DIR,
# this also writes a standalone copy of the flake (flake.nix, nix/*.nix and
# the busybox) to DIR, to be used as `path:DIR#agent-example`. Idempotent.
set -eu
cd "$(dirname "$0")/.."
BB=${BUSYBOX:-$(command -v busybox || true)}
[ -n "$BB" ] || { echo "nix-flake: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
case "$(file -L "$BB")" in
*"statically linked"* | *static-pie*) ;;
*) echo "nix-flake: $BB is not static (apt-get install busybox-static)" >&2; exit 1 ;;
esac

# copy SRC DST: copy if missing or different (keeps mtimes stable otherwise).
copy() {
	if ! cmp -s "$1" "$2" 2>/dev/null; then
		mkdir -p "$(dirname "$2")"
		cp "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
	fi
}
copy "$BB" nix/bb/busybox
chmod 0755 nix/bb/busybox

if [ $# -gt 0 ]; then
	dir=$1
	mkdir -p "$dir/nix/bb"
	copy flake.nix "$dir/flake.nix"
	for f in nix/*.nix; do copy "$f" "$dir/$f"; done
	# Drop .nix files the repository no longer has.
	for f in "$dir"/nix/*.nix; do [ -e "nix/$(basename "$f")" ] || rm -f "$f"; done
	copy nix/bb/busybox "$dir/nix/bb/busybox"
	chmod 0755 "$dir/nix/bb/busybox"
	echo "nix-flake: flake ready at path:$(cd "$dir" && pwd)"
fi

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFaultFullRoot: with --root on a small tmpfs filled to within a few
// KiB of full, run -d either works or fails in one line saying the root is
// full; either way list works and delete --force leaves nothing.
func TestFaultFullRoot(t *testing.T) {
	r := newRunner(t)
	if err := unix.Mount("ft-full", r.Root, "tmpfs", 0, "size=256k,mode=0711"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(r.Root, unix.MNT_DETACH) })
	b := newBundle(t, "sleep", "1000")
	failed, worked := 0, 0
	for _, left := range []int{0, 2 << 10, 4 << 10, 6 << 10, 8 << 10, 12 << 10, 32 << 10} {
		fill := filepath.Join(r.Root, "@fill")
		os.Remove(fill)
		var st unix.Statfs_t
		if err := unix.Statfs(r.Root, &st); err != nil {
			t.Fatal(err)
		}
		free := int(st.Bavail) * int(st.Bsize)
		if free > left {
			if err := os.WriteFile(fill, make([]byte, free-left), 0o600); err != nil && !strings.Contains(err.Error(), "no space") {
				t.Fatal(err)
			}
		}
		id := ftID(t, r, "full")
		res, err := r.coreExec(nil, "run", "-d", "--bundle", b.Dir, id)
		if err != nil {
			t.Fatal(err)
		}
		if res.Code != 0 {
			failed++
			msg := strings.TrimSpace(res.Stderr)
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "no space left on device") || !strings.Contains(msg, "the state root "+r.Root+" is full") {
				t.Errorf("%d bytes left: run -d failed with %q; want one line saying the root is full", left, msg)
			}
		} else {
			worked++
		}
		if res := r.Run(nil, "list"); res.Code != 0 {
			t.Errorf("%d bytes left: list: exit %d, stderr %q", left, res.Code, res.Stderr)
		}
		r.OK("delete", "--force", id)
		assertNothingLeft(t, r, id, b.Dir)
		os.Remove(fill)
	}
	if failed == 0 || worked == 0 {
		t.Errorf("of the fill levels, %d failed and %d worked: want some of each (the sizes no longer bracket a container's state)", failed, worked)
	}
}

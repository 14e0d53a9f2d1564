package workspace

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func stat(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// sparse makes a size-byte file at p with data only where data says.
func sparse(t *testing.T, p string, size int64, data map[int64]string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, s := range data {
		if _, err := f.WriteAt([]byte(s), off); err != nil {
			t.Fatal(err)
		}
	}
}

func checkSparse(t *testing.T, p string, size int64, data map[int64]string) {
	t.Helper()
	st := stat(t, p)
	if st.Size != size || st.Blocks*512 > 1<<20 {
		t.Errorf("%s: size %d, %d bytes allocated; want %d, a few blocks", p, st.Size, st.Blocks*512, size)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off, s := range data {
		b := make([]byte, len(s)+1)
		f.ReadAt(b, off)
		if string(b[:len(s)]) != s || b[len(s)] != 0 {
			t.Errorf("%s at %d: %q, want %q then a hole", p, off, b, s)
		}
	}
}

func TestSparseBothWays(t *testing.T) {
	orig, dir, dropped := setup(t)
	in := map[int64]string{0: "head", 1 << 29: "middle"}
	sparse(t, filepath.Join(orig, "s"), 1<<30, in)
	c := copyIn(t, orig, dir, dropped)
	checkSparse(t, filepath.Join(dir, "s"), 1<<30, in)
	back := map[int64]string{100 << 20: "back", 2<<30 - 4: "tail"}
	sparse(t, filepath.Join(dir, "new"), 2<<30, back)
	c.MaxBytes = 1 << 20
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	checkSparse(t, filepath.Join(orig, "new"), 2<<30, back)
	if st := stat(t, filepath.Join(orig, "new")); st.Uid != 1000 || st.Mode&0o7777 != 0o644 {
		t.Errorf("new: owner %d, mode %o", st.Uid, st.Mode)
	}
}

func TestHardlinksBothWays(t *testing.T) {
	orig, dir, dropped := setup(t)
	write(t, filepath.Join(orig, "a"), "a", 0o644)
	os.Mkdir(filepath.Join(orig, "d"), 0o755)
	os.Link(filepath.Join(orig, "a"), filepath.Join(orig, "d", "b"))
	c := copyIn(t, orig, dir, dropped)
	a, b := stat(t, filepath.Join(dir, "a")), stat(t, filepath.Join(dir, "d", "b"))
	if a.Ino != b.Ino || a.Nlink != 2 || a.Uid != 2000 {
		t.Errorf("copy in: a %d, d/b %d, %d links, owner %d", a.Ino, b.Ino, a.Nlink, a.Uid)
	}
	// The sandbox changes a (so d/b) in place and links a new file thrice.
	os.WriteFile(filepath.Join(dir, "a"), []byte("changed"), 0o644)
	write(t, filepath.Join(dir, "n"), "n", 0o600)
	for _, l := range []string{"n2", "d/n3", "e/n4"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, l)), 0o755)
		if err := os.Link(filepath.Join(dir, "n"), filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	for _, group := range [][]string{{"a", "d/b"}, {"n", "n2", "d/n3", "e/n4"}} {
		first := stat(t, filepath.Join(orig, group[0]))
		if int(first.Nlink) != len(group) || first.Uid != 1000 || first.Gid != 1000 {
			t.Errorf("%s: %d links, owner %d:%d; want %d, 1000:1000", group[0], first.Nlink, first.Uid, first.Gid, len(group))
		}
		for _, p := range group[1:] {
			if st := stat(t, filepath.Join(orig, p)); st.Ino != first.Ino {
				t.Errorf("%s is not a link to %s", p, group[0])
			}
		}
	}
	if data, _ := os.ReadFile(filepath.Join(orig, "d", "b")); string(data) != "changed" {
		t.Errorf("d/b: %q", data)
	}
}

// A link the sandbox makes to a workspace file that is hard-linked to a
// file outside the workspace is a copy, never another link to it; and a
// recorded first name no longer holding the inode written is not linked to.
func TestHardlinkNeverOutside(t *testing.T) {
	orig, dir, dropped := setup(t)
	outside := filepath.Join(t.TempDir(), "outside")
	write(t, outside, "outside", 0o644)
	os.Link(outside, filepath.Join(orig, "h"))
	c := copyIn(t, orig, dir, dropped)
	os.Link(filepath.Join(dir, "h"), filepath.Join(dir, "h2"))
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	// h's inode was linked in the copy (its ctime moved), so h is written
	// back as a file of its own: the outside file is untouched, one link
	// fewer.
	if st := stat(t, outside); st.Nlink != 1 {
		t.Errorf("outside file now has %d links", st.Nlink)
	}
	if data, _ := os.ReadFile(outside); string(data) != "outside" {
		t.Errorf("outside file changed: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(orig, "h2")); string(data) != "outside" {
		t.Errorf("h2: %q", data)
	}

	// The first name was swapped (by the host user) for a symlink to, or
	// another link of, a file outside.
	dfd, err := openDir(unix.AT_FDCWD, orig, true)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	m := &mirror{c: c, back: true, droot: dfd, links: map[inode]written{}}
	written := written{rel: "first", inode: inode{uint64(stat(t, orig).Dev), 1}}
	for _, plant := range []func(string) error{
		func(p string) error { return os.Symlink(outside, p) },
		func(p string) error { return os.Link(outside, p) },
	} {
		os.Remove(filepath.Join(orig, "first"))
		if err := plant(filepath.Join(orig, "first")); err != nil {
			t.Fatal(err)
		}
		if ok, err := m.hardlink(dfd, "second", "second", written); ok || err != nil {
			t.Errorf("linked to a first name that is not the file written: %v %v", ok, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(orig, "second")); err == nil {
		t.Errorf("second made")
	}
	if st := stat(t, outside); st.Nlink != 2 {
		t.Errorf("outside file has %d links, want 2 (itself, first)", st.Nlink)
	}
	entries, _ := os.ReadDir(orig)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Errorf("temporary %s left", e.Name())
		}
	}
}

// Over MaxBytes, Back stops with a BudgetError before the file that would
// cross it: each file is old or new, and no temporary is left.
func TestBudget(t *testing.T) {
	orig, dir, dropped := setup(t)
	old := bytes.Repeat([]byte("o"), 100<<10)
	write(t, filepath.Join(orig, "f1"), string(old), 0o644)
	write(t, filepath.Join(orig, "f2"), string(old), 0o644)
	c := copyIn(t, orig, dir, dropped)
	c.MaxBytes = 1 << 20
	nw := bytes.Repeat([]byte("n"), 600<<10)
	write(t, filepath.Join(dir, "f1"), string(nw), 0o644)
	write(t, filepath.Join(dir, "f2"), string(nw), 0o644)
	err := c.Back()
	var be *BudgetError
	if !errors.As(err, &be) || be.Max != 1<<20 || !strings.Contains(err.Error(), "1MiB") || !strings.Contains(err.Error(), orig) {
		t.Fatalf("Back over budget: %v", err)
	}
	var newer int
	for _, f := range []string{"f1", "f2"} {
		data, _ := os.ReadFile(filepath.Join(orig, f))
		switch {
		case bytes.Equal(data, nw):
			newer++
		case !bytes.Equal(data, old):
			t.Errorf("%s is neither old nor new: %d bytes", f, len(data))
		}
	}
	if newer != 1 {
		t.Errorf("%d files written back, want the 1 within budget", newer)
	}
	entries, _ := os.ReadDir(orig)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Errorf("temporary %s left", e.Name())
		}
	}
	// Without a bound, it all comes back.
	c.MaxBytes = 0
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
}

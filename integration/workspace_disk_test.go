package integration

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Attacks on the host's disk through a copy-in-out workspace: the
// write-back runs in host-side nucleus, outside the sandbox's cgroup, so
// what costs the sandbox nothing must cost the host nothing either, and
// what it does cost is bounded.

const sparseSize = 2 << 30 // 2 GiB apparent, no data

// allocated is the disk space p takes (st_blocks), and its stat.
func allocated(t *testing.T, p string) (int64, *syscall.Stat_t) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return st.Blocks * 512, &st
}

// byteAt reads one byte of p at off.
func byteAt(t *testing.T, p string, off int64) byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("%s at %d: %v", p, off, err)
	}
	return b[0]
}

// TestWorkspaceCopyBackSparse: the sandbox makes a 2 GiB sparse file (4 KB
// of its disk) and sleeps past --timeout. The write-back must keep the
// holes: the host file takes kilobytes, not gigabytes, and a byte written
// in the middle comes back where it was.
func TestWorkspaceCopyBackSparse(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	ws := userWorkspace(t)
	res := r.sandbox(b, "wb-sparse", []string{"--timeout", "2s", "--workspace", ws + ":copy-in-out"}, "sh", "-c",
		"truncate -s "+strconv.Itoa(sparseSize)+" s && printf x | dd of=s bs=1 seek=1073741824 conv=notrunc 2>/dev/null && echo ok; sleep 100")
	expectLine(t, res, "ok")
	if res.Code != 124 {
		t.Errorf("sandbox past --timeout: exit %d, want 124; stderr %q", res.Code, res.Stderr)
	}
	p := filepath.Join(ws, "s")
	used, st := allocated(t, p)
	if st.Size != sparseSize {
		t.Fatalf("sparse file came back with size %d, want %d", st.Size, sparseSize)
	}
	if used > 1<<20 {
		t.Errorf("a %d-byte sparse file holding one byte of data takes %d bytes on the host after write-back", st.Size, used)
	}
	if c := byteAt(t, p, 1<<30); c != 'x' {
		t.Errorf("data byte at 1 GiB came back as %q", c)
	}
	if c := byteAt(t, p, 1<<29); c != 0 {
		t.Errorf("hole at 512 MiB came back as %q", c)
	}
	if st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("sparse file owned by %d:%d, want 1000:1000", st.Uid, st.Gid)
	}
}

// TestWorkspaceCopyInSparseHardlinks: a sparse file and a hard-linked
// file in the host workspace cost the private copy what they cost the
// host: the holes stay holes and the links stay one inode.
func TestWorkspaceCopyInSparseHardlinks(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	ws := userWorkspace(t)
	p := filepath.Join(ws, "s")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sparseSize); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 1<<30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	data := make([]byte, 4<<20)
	rand.Read(data)
	os.WriteFile(filepath.Join(ws, "a"), data, 0o644)
	os.Mkdir(filepath.Join(ws, "d"), 0o755)
	if err := os.Link(filepath.Join(ws, "a"), filepath.Join(ws, "d", "b")); err != nil {
		t.Fatal(err)
	}
	chownTree(t, ws, 1000, 1000)
	res := r.sandbox(b, "wb-sparse-in", []string{"--workspace", ws + ":copy-in-out"}, "sh", "-c",
		"echo blocks=$(stat -c %b s) size=$(stat -c %s s) && echo links=$(stat -c %h a) && echo ino=$(stat -c %i a)-$(stat -c %i d/b) && dd if=s bs=1 skip=1073741824 count=1 2>/dev/null; echo")
	if res.Code != 0 {
		t.Fatalf("copy-in-out sandbox: exit %d: %s", res.Code, res.Stderr)
	}
	var blocks, size int64 = -1, -1
	for _, f := range strings.Fields(res.Stdout) {
		if v, ok := strings.CutPrefix(f, "blocks="); ok {
			blocks, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(f, "size="); ok {
			size, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if size != sparseSize || blocks < 0 || blocks*512 > 1<<20 {
		t.Errorf("the private copy of a %d-byte sparse file: size %d, %d blocks (want ~none): %q", int64(sparseSize), size, blocks, res.Stdout)
	}
	expectLine(t, res, "links=2")
	for _, line := range strings.Split(res.Stdout, "\n") {
		if v, ok := strings.CutPrefix(line, "ino="); ok {
			if ids := strings.Split(v, "-"); len(ids) != 2 || ids[0] != ids[1] {
				t.Errorf("hard links a and d/b came in as different inodes: %s", line)
			}
		}
	}
	expectLine(t, res, "x\n")
	// Unchanged, so the workspace's own files stay as they were.
	if _, st := allocated(t, filepath.Join(ws, "a")); st.Nlink != 2 {
		t.Errorf("a: %d links after the run, want 2", st.Nlink)
	}
}

// TestWorkspaceCopyBackHardlinks: a 10 MB file and 20 hard links to it
// come back as one inode, not 21 copies (links in one directory: Landlock
// refuses the sandbox cross-directory links); and a link the sandbox makes to
// a workspace file that is hard-linked to a host file outside the
// workspace must not become another link to that host file.
func TestWorkspaceCopyBackHardlinks(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	ws := userWorkspace(t)
	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, []byte("host-secret"), 0o644)
	if err := os.Link(other, filepath.Join(ws, "h")); err != nil {
		t.Fatal(err)
	}
	res := r.sandbox(b, "wb-hardlinks", []string{"--workspace", ws + ":copy-in-out"}, "sh", "-c",
		"dd if=/dev/urandom of=big bs=1M count=10 2>/dev/null && for i in $(seq 20); do ln big l$i; done && ln h h2 && echo ok")
	expectLine(t, res, "ok")
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	big := filepath.Join(ws, "big")
	want, err := os.ReadFile(big)
	if err != nil || len(want) != 10<<20 {
		t.Fatalf("big: %d bytes, %v", len(want), err)
	}
	_, bst := allocated(t, big)
	if bst.Nlink != 21 {
		t.Errorf("big came back with %d links, want 21 (itself and l1..l20)", bst.Nlink)
	}
	for i := 1; i <= 20; i++ {
		p := filepath.Join(ws, "l"+strconv.Itoa(i))
		_, st := allocated(t, p)
		if st.Ino != bst.Ino || st.Dev != bst.Dev {
			t.Errorf("%s is a separate copy (inode %d), not a link to big (inode %d)", p, st.Ino, bst.Ino)
		}
		if st.Uid != 1000 || st.Gid != 1000 || st.Mode&0o7000 != 0 {
			t.Errorf("%s: owner %d:%d mode %o", p, st.Uid, st.Gid, st.Mode)
		}
	}
	_, ost := allocated(t, other)
	_, h2 := allocated(t, filepath.Join(ws, "h2"))
	// h's inode was linked in the copy, so h comes back as a file of its
	// own (the outside file loses that link, nothing else); h2 is never a
	// link to the outside file.
	if h2.Ino == ost.Ino || ost.Nlink > 2 {
		t.Errorf("write-back linked h2 to the host file outside the workspace (links now %d)", ost.Nlink)
	}
	if data, _ := os.ReadFile(other); string(data) != "host-secret" {
		t.Errorf("host file outside the workspace changed: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "h2")); string(data) != "host-secret" {
		t.Errorf("h2: %q", data)
	}
}

// TestWorkspaceCopyBackBudget: what the write-back writes is bounded by
// --workspace-max-bytes. Over it, nucleus stops with a one-line error
// naming the workspace and the budget, exits non-zero, audits it, and
// leaves every file old or new, none half-written. (The copy itself is a
// tmpfs of that size, so the sandbox can't write more data than the
// budget; the entries it makes cost the write-back a block each and
// carry it over.)
func TestWorkspaceCopyBackBudget(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	ws := userWorkspace(t)
	old := bytes.Repeat([]byte("o"), 3<<20)
	os.WriteFile(filepath.Join(ws, "data"), old, 0o644)
	os.WriteFile(filepath.Join(ws, "keep.txt"), []byte("keep"), 0o644)
	chownTree(t, ws, 1000, 1000)
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	flags := []string{"--audit-log", log, "--workspace-max-bytes", "8M", "--workspace", ws + ":copy-in-out"}
	res := r.sandbox(b, "wb-budget", flags, "sh", "-c",
		"echo new > keep.txt && dd if=/dev/urandom of=data bs=1M count=6 2>/dev/null && mkdir many && i=0 && while [ $i -lt 1500 ]; do : > many/f$i; i=$((i+1)); done && echo ok")
	expectLine(t, res, "ok")
	msg := strings.TrimRight(res.Stderr, "\n")
	if res.Code == 0 {
		t.Errorf("6 MiB and 1500 entries (12 MiB by the budget's count) written back under an 8 MiB budget: exit 0")
	}
	for _, want := range []string{ws, "8MiB", "--workspace-max-bytes"} {
		if !strings.Contains(msg, want) {
			t.Errorf("budget error %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("budget error is not one line: %q", msg)
	}
	if ev := auditEvents(t, log, "workspace_budget_exceeded"); len(ev) != 1 || ev[0]["workspace"] != ws {
		t.Errorf("audit: workspace_budget_exceeded events %v", ev)
	}
	// Each file is old or new, none half-written, no temporary left.
	if data, err := os.ReadFile(filepath.Join(ws, "data")); err != nil || (!bytes.Equal(data, old) && len(data) != 6<<20) {
		t.Errorf("data is neither old nor new: %d bytes, %v", len(data), err)
	}
	made, _ := os.ReadDir(filepath.Join(ws, "many"))
	if st, err := os.Stat(filepath.Join(ws, "data")); err == nil && st.Size() == 6<<20 && len(made) >= 1500 {
		t.Errorf("the new data and all %d entries written back over the budget", len(made))
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "keep.txt")); string(data) != "keep" && string(data) != "new\n" {
		t.Errorf("keep.txt is neither old nor new: %q", data)
	}
	entries, _ := os.ReadDir(ws)
	var written int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".nucleus-tmp-") {
			t.Errorf("temporary %s left in the workspace", e.Name())
		}
		if e.Name() == "data" {
			if st, err := os.Stat(filepath.Join(ws, e.Name())); err == nil && st.Size() == 6<<20 {
				written += st.Size()
			}
		}
	}
	if written > 8<<20 {
		t.Errorf("%d bytes written back under an 8 MiB budget", written)
	}

	// Within the budget, it all comes back, and links cost no data.
	ws2 := userWorkspace(t)
	res = r.sandbox(b, "wb-budget-ok", []string{"--workspace-max-bytes", "8M", "--workspace", ws2 + ":copy-in-out"}, "sh", "-c",
		"dd if=/dev/urandom of=big bs=1M count=6 2>/dev/null && for i in 1 2 3 4; do ln big l$i; done && truncate -s 1G s && echo ok")
	expectLine(t, res, "ok")
	if res.Code != 0 {
		t.Errorf("6 MiB, 4 links and a sparse file under an 8 MiB budget: exit %d: %s", res.Code, res.Stderr)
	}
	if _, st := allocated(t, filepath.Join(ws2, "l4")); st.Size != 6<<20 || st.Nlink != 5 {
		t.Errorf("l4: size %d, %d links", st.Size, st.Nlink)
	}

	// A bad value is refused up front.
	r.Fail([]string{"--workspace-max-bytes"}, "sandbox", "--workspace-max-bytes", "lots", "--workspace", ws2+":copy-in-out",
		"--bundle", b.Dir, "--id", "wb-budget-bad", "--", "true")
	assertNoLeftovers(t, r.Root, "wb-budget-bad", b.Dir)
}

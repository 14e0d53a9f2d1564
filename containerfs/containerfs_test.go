package containerfs

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenRefusesAnotherProcess(t *testing.T) {
	st, err := startTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A pid reused since the state was written has another start time.
	if _, err := Open(Process{Pid: os.Getpid(), StartTime: st + 1}); !errors.Is(err, ErrGone) {
		t.Errorf("Open with another start time: %v, want ErrGone", err)
	}
	if _, err := Open(Process{Pid: 0}); !errors.Is(err, ErrGone) {
		t.Errorf("Open of pid 0: %v, want ErrGone", err)
	}
	r, err := Open(Process{Pid: os.Getpid(), StartTime: st})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

func TestIDMap(t *testing.T) {
	m := IDMap{{Container: 0, Host: 1 << 30, Size: 65536}}
	if h, ok := m.ToHost(1000); !ok || h != 1<<30+1000 {
		t.Errorf("ToHost(1000) = %d %v", h, ok)
	}
	if _, ok := m.ToHost(70000); ok {
		t.Error("ToHost of an unmapped id succeeded")
	}
	if c, ok := m.ToContainer(0); ok || c != overflowID {
		t.Errorf("ToContainer(host root) = %d %v, want the overflow id", c, ok)
	}
	if c, _ := (IDMap{}).ToContainer(5); c != 5 {
		t.Errorf("no user namespace: %d", c)
	}
}

func tarStream(t *testing.T, hdrs ...tar.Header) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = 1
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("x"))
		}
	}
	tw.Close()
	return &buf
}

func unpackInto(t *testing.T, dir string, hdrs ...tar.Header) error {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	u := &unpacker{root: fd, owner: func(*tar.Header) (int, int) { return os.Getuid(), os.Getgid() }}
	return u.run(tarStream(t, hdrs...))
}

// A hostile stream (the container's, or one on stdin) cannot place
// anything outside the destination.
func TestUnpackStaysBeneath(t *testing.T) {
	top := t.TempDir()
	dest := filepath.Join(top, "dest")
	outside := filepath.Join(top, "outside")
	os.Mkdir(dest, 0o755)
	os.Mkdir(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "victim"), []byte("v"), 0o644)
	cases := map[string][]tar.Header{
		"dotdot":       {{Name: "../outside/x", Typeflag: tar.TypeReg, Mode: 0o644}},
		"through link": {{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../outside"}, {Name: "l/x", Typeflag: tar.TypeReg, Mode: 0o644}},
		"link in dirs": {{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "a/b", Typeflag: tar.TypeSymlink, Linkname: "/"}, {Name: "a/b/c/x", Typeflag: tar.TypeReg}},
		"hard link":    {{Name: "h", Typeflag: tar.TypeLink, Linkname: "../outside/victim"}},
		"hard via sym": {{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "../outside"}, {Name: "h", Typeflag: tar.TypeLink, Linkname: "s/victim"}},
	}
	for name, hdrs := range cases {
		if err := unpackInto(t, dest, hdrs...); !errors.Is(err, ErrEscape) {
			t.Errorf("%s: %v, want ErrEscape", name, err)
		}
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("outside has %d entries, want only victim", len(entries))
	}
	var st unix.Stat_t
	unix.Stat(filepath.Join(outside, "victim"), &st)
	if st.Nlink != 1 {
		t.Errorf("victim was hard-linked into the destination (nlink %d)", st.Nlink)
	}
	// An absolute name is taken beneath the destination.
	if err := unpackInto(t, dest, tar.Header{Name: "/abs", Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, "abs")); err != nil {
		t.Errorf("/abs did not land beneath the destination: %v", err)
	}
}

// An existing link at an entry's name is replaced, never written through.
func TestUnpackReplacesLinks(t *testing.T) {
	top := t.TempDir()
	dest := filepath.Join(top, "dest")
	os.Mkdir(dest, 0o755)
	victim := filepath.Join(top, "victim")
	os.WriteFile(victim, []byte("v"), 0o644)
	os.Symlink(victim, filepath.Join(dest, "f"))
	if err := unpackInto(t, dest, tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o6755}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "v" {
		t.Errorf("written through a link: victim holds %q", data)
	}
	fi, err := os.Lstat(filepath.Join(dest, "f"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("f: %v %v, want a regular 0755 file without set-id bits", fi.Mode(), err)
	}
	if err := unpackInto(t, dest, tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "dev")); err == nil {
		t.Error("a device node was made")
	}
}

func TestCopySparse(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 8<<20)
	copy(data[len(data)-3:], "end")
	if err := copySparse(f, bytes.NewReader(data), func(int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Fstat(int(f.Fd()), &st)
	got, _ := os.ReadFile(f.Name())
	if !bytes.Equal(got, data) {
		t.Fatal("sparse copy differs from its source")
	}
	if st.Blocks*512 > 1<<20 {
		t.Errorf("8 MiB of zeros took %d bytes of disk", st.Blocks*512)
	}
}

func TestPackRefusesEndlessNesting(t *testing.T) {
	top := t.TempDir()
	fd, err := unix.Open(top, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < maxDepth+2; i++ {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	unix.Close(fd)
	root, err := unix.Open(top, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(root)
	p := newPacker(newTarSink(io.Discard, 0), func(u, g uint32) (int, int) { return int(u), int(g) }, nil)
	if err := p.entry(root, "d", "d"); !errors.Is(err, ErrTooDeep) {
		t.Errorf("packing %d nested dirs: %v, want ErrTooDeep", maxDepth+2, err)
	}
}

// A copy stopped by its budget takes back the entries it made at the top
// of the destination; files it completed in a directory that was there
// before stay, and no temporary file is left.
func TestFailedCopyTakesBack(t *testing.T) {
	dest := t.TempDir()
	os.Mkdir(filepath.Join(dest, "old"), 0o755)
	fd, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	owner := func(*tar.Header) (int, int) { return os.Getuid(), os.Getgid() }
	// Each entry costs a block, each one-byte file a block more: the
	// fourth entry crosses 6 blocks.
	u := &unpacker{root: fd, owner: owner, b: budget{max: 6 * block}}
	err = u.run(tarStream(t,
		tar.Header{Name: "old/a", Typeflag: tar.TypeReg, Mode: 0o644},
		tar.Header{Name: "new/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "new/b", Typeflag: tar.TypeReg, Mode: 0o644},
		tar.Header{Name: "new/c", Typeflag: tar.TypeReg, Mode: 0o644}))
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("over the budget: %v, want ErrBudget", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "new")); err == nil {
		t.Error("the directory the failed copy made is still there")
	}
	if got, err := os.ReadFile(filepath.Join(dest, "old", "a")); err != nil || string(got) != "x" {
		t.Errorf("old/a, complete before the budget ran out: %q %v", got, err)
	}
	if m, _ := filepath.Glob(filepath.Join(dest, "*", ".nucleus-tmp-*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

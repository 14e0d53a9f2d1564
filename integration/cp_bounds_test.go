package integration

import (
	"archive/tar"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A container can make a file of any apparent size for nothing (a sparse
// file on its tmpfs): `nucleus cp` is bounded by default (--max-bytes 4G),
// copies holes as holes, never reads them, and an interrupted copy leaves
// nothing half-written.

// cfContainer starts a detached container (ids "cf-...") that runs setup,
// then waits; edit changes the bundle's spec first.
func cfContainer(t *testing.T, r *Runner, name, setup string, edit func(*specs.Spec), extra ...string) (string, int) {
	t.Helper()
	b := newBundle(t, "sh", "-c", setup+"\ntouch /tmp/.ready; exec sleep 1000")
	b.Spec.Root.Readonly = false
	if edit != nil {
		edit(b.Spec)
	}
	b.Save(t)
	var rb [3]byte
	rand.Read(rb[:])
	id := "cf-" + name + "-" + hex.EncodeToString(rb[:])
	t.Cleanup(func() { _ = r.Cmd("delete", "--force", id).Run() })
	args := append([]string{"run", "-d"}, extra...)
	r.coreDetached(append(args, "--bundle", b.Dir, id)...)
	pid := r.corePid(id)
	waitForUpTo(t, 60*time.Second, "the container's setup", func() bool {
		_, err := os.Stat(inContainer(pid, "/tmp/.ready"))
		return err == nil
	})
	return id, pid
}

// capped is a run of nucleus whose stdout is counted, not kept, and cut
// off past a cap: the old cp streamed a sparse file's 2^62 bytes of holes.
type capped struct {
	Code   int
	Stderr string
	Out    int64 // bytes written to stdout
	Killed string
}

type counter struct {
	n    atomic.Int64
	max  int64
	over func()
}

func (c *counter) Write(p []byte) (int, error) {
	if c.n.Add(int64(len(p))) > c.max {
		c.over()
	}
	return len(p), nil
}

// runCapped runs nucleus; stdout over max bytes, or a run still going
// after 60 s (a copy reading 2^62 zeros), kills it.
func runCapped(t *testing.T, r *Runner, max int64, args ...string) capped {
	t.Helper()
	cmd := r.Cmd(args...)
	var stderr syncBuffer
	var killed atomic.Value
	killed.Store("")
	out := &counter{max: max}
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out.over = func() {
		if killed.CompareAndSwap("", "wrote more than the cap to stdout") {
			cmd.Process.Kill()
		}
	}
	timer := time.AfterFunc(60*time.Second, func() {
		if killed.CompareAndSwap("", "still running after 60s") {
			cmd.Process.Kill()
		}
	})
	_ = cmd.Wait()
	timer.Stop()
	return capped{Code: cmd.ProcessState.ExitCode(), Stderr: stderr.String(), Out: out.n.Load(), Killed: killed.Load().(string)}
}

// failsOverBound checks a cp stopped by the default bound: in time, one
// line naming the flag and the bound, little or nothing on stdout.
func failsOverBound(t *testing.T, what string, c capped) {
	t.Helper()
	if c.Killed != "" {
		t.Errorf("%s: %s (exit %d, %d bytes out)", what, c.Killed, c.Code, c.Out)
		return
	}
	msg := strings.TrimRight(c.Stderr, "\n")
	t.Logf("%s: exit %d: %s", what, c.Code, msg)
	if c.Code == 0 || strings.Contains(msg, "\n") || !strings.Contains(msg, "--max-bytes") || !strings.Contains(msg, "4GiB") {
		t.Errorf("%s: exit %d, stderr %q: want one line naming --max-bytes and its 4GiB bound", what, c.Code, msg)
	}
	if c.Out > 1<<20 {
		t.Errorf("%s: wrote %d bytes to stdout", what, c.Out)
	}
}

// noneLeft fails if dir holds anything but the names in keep.
func noneLeft(t *testing.T, dir string, keep ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !contains(keep, e.Name()) {
			t.Errorf("%s: %s left behind", dir, e.Name())
		}
	}
}

// TestCpBoundsHugeSparse: the attack. A sandbox ftruncates a file to
// 2^62 bytes on its tmpfs; copied out it must neither hang reading its
// holes nor stream them without end: the default bound stops it, in one
// line, leaving nothing.
func TestCpBoundsHugeSparse(t *testing.T) {
	r := newRunner(t)
	id, _ := cfContainer(t, r, "huge", "truncate -s 4611686018427387904 /tmp/huge; mkdir /tmp/d; echo small > /tmp/d/a; truncate -s 4611686018427387904 /tmp/d/huge; truncate -s 4294971392 /tmp/over; echo end >> /tmp/over", nil, "--mode", "agent")
	host := t.TempDir()
	// To a host file only data counts, and there is none: the host's
	// filesystem refuses 2^62 bytes (ext4 stops at 16 TiB) at once, where
	// the old cp read every zero.
	for _, c := range []struct{ what, src, dest string }{
		{"cp of the file to a host file", "/tmp/huge", "out"},
		{"cp of the dir to a host dir", "/tmp/d", "d"},
	} {
		res := runCapped(t, r, 1<<20, "cp", id+":"+c.src, filepath.Join(host, c.dest))
		t.Logf("%s: exit %d: %s", c.what, res.Code, strings.TrimSpace(res.Stderr))
		if msg := strings.TrimRight(res.Stderr, "\n"); res.Killed != "" || res.Code == 0 || strings.Contains(msg, "\n") {
			t.Errorf("%s: exit %d %s, stderr %q: want a one-line error", c.what, res.Code, res.Killed, msg)
		}
	}
	noneLeft(t, host)
	// 8 TiB of hole fits: it comes out as a hole, in no time.
	r.OK("exec", id, "truncate", "-s", "8796093022208", "/tmp/8t")
	r.OK("cp", id+":/tmp/8t", filepath.Join(host, "8t"))
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(host, "8t"), &st); err != nil || st.Size != 8796093022208 || st.Blocks != 0 {
		t.Errorf("8 TiB hole copied out: size %d, %d blocks (%v)", st.Size, st.Blocks, err)
	}
	os.Remove(filepath.Join(host, "8t"))
	failsOverBound(t, "cp of /tmp/d to -", runCapped(t, r, 1<<20, "cp", id+":/tmp/d", "-"))
	failsOverBound(t, "cp of the file to -", runCapped(t, r, 1<<20, "cp", id+":/tmp/huge", "-"))

	// A file of 4 GiB and 4 KiB, nearly all hole: to a host file it costs
	// its data only, within the bound; as a plain tar it is 4 GiB of
	// bytes, over it, unless --max-bytes max lifts the bound.
	r.OK("cp", id+":/tmp/over", filepath.Join(host, "over"))
	if err := syscall.Stat(filepath.Join(host, "over"), &st); err != nil || st.Size != 4294971396 || st.Blocks*512 > 64<<10 {
		t.Errorf("host copy of the sparse file: size %d, %d bytes of disk (%v)", st.Size, st.Blocks*512, err)
	}
	failsOverBound(t, "cp of a 4 GiB sparse file to -", runCapped(t, r, 1<<20, "cp", id+":/tmp/over", "-"))
	c := runCapped(t, r, 5<<30, "cp", "--max-bytes", "max", id+":/tmp/over", "-")
	if c.Code != 0 || c.Killed != "" || c.Out < 4294971396 {
		t.Errorf("cp --max-bytes max to -: exit %d %s, %d bytes: %s", c.Code, c.Killed, c.Out, c.Stderr)
	}
	r.Fail([]string{"--max-bytes", "2K"}, "cp", "--max-bytes", "2K", id+":/tmp/d/a", filepath.Join(host, "a"))
}

// TestCpBoundsSparseOut: a 2 GiB file with 200 scattered one-byte writes
// comes out as a sparse file costing its data pages, and goes back in
// the same way.
func TestCpBoundsSparseOut(t *testing.T) {
	r := newRunner(t)
	id, pid := cfContainer(t, r, "sparse", "truncate -s 2147483648 /tmp/s; i=0; while [ $i -lt 200 ]; do printf x | dd of=/tmp/s bs=1 seek=$((i*10000000+4097)) conv=notrunc 2>/dev/null; i=$((i+1)); done", nil, "--mode", "agent")
	host := t.TempDir()
	check := func(p string) {
		t.Helper()
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var st syscall.Stat_t
		syscall.Fstat(int(f.Fd()), &st)
		if st.Size != 2147483648 {
			t.Errorf("%s: size %d", p, st.Size)
		}
		// 200 data pages: 800 KiB; the old cp wrote 64 KiB per write.
		if st.Blocks*512 > 200*8192 {
			t.Errorf("%s: %d bytes of disk for 200 bytes of data", p, st.Blocks*512)
		}
		b := make([]byte, 3)
		for _, i := range []int64{0, 1, 137, 199} {
			if _, err := f.ReadAt(b, i*10000000+4096); err != nil || string(b) != "\x00x\x00" {
				t.Errorf("%s at write %d: %q %v", p, i, b, err)
			}
		}
	}
	r.OK("cp", id+":/tmp/s", filepath.Join(host, "s"))
	check(filepath.Join(host, "s"))
	// In a directory too.
	r.OK("exec", id, "sh", "-c", "mkdir /tmp/dir && ln /tmp/s /tmp/dir/s")
	r.OK("cp", id+":/tmp/dir", filepath.Join(host, "dir"))
	check(filepath.Join(host, "dir", "s"))
	// And back in, from the host file.
	r.OK("cp", filepath.Join(host, "s"), id+":/tmp/back")
	check(inContainer(pid, "/tmp/back"))
}

// TestCpInterruptCleanup: SIGTERM or SIGINT during a copy exits 143 or
// 130 and leaves no temporary file and no half-copied entry.
func TestCpInterruptCleanup(t *testing.T) {
	r := newRunner(t)
	id, pid := cfContainer(t, r, "intr", "dd if=/dev/zero of=/data/big/big bs=1M count=1024 2>/dev/null; echo a > /data/big/a", func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1200m"}})
		s.Process.Args[2] = "mkdir /data/big; " + s.Process.Args[2]
	})

	// In, from a tar on stdin that stalls inside its second file: the
	// copy is mid-file when the signal comes.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		// A pipe of the kernel's: os/exec hands it over as is, no goroutine
		// of ours left copying into the killed process.
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		bg := r.coreBackground(pr, "cp", "-", id+":/tmp")
		pr.Close()
		tw := tar.NewWriter(pw)
		tw.WriteHeader(&tar.Header{Name: "newdir/", Typeflag: tar.TypeDir, Mode: 0o755})
		tw.WriteHeader(&tar.Header{Name: "newdir/a", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
		tw.Write([]byte("a\n"))
		tw.WriteHeader(&tar.Header{Name: "newdir/b", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 30})
		tw.Write(make([]byte, 1<<20))
		waitFor(t, "a temporary file in the container", func() bool {
			m, _ := filepath.Glob(inContainer(pid, "/tmp/newdir/.nucleus-tmp-*"))
			return len(m) > 0
		})
		bg.cmd.Process.Signal(sig)
		res := bg.wait(t)
		pw.Close()
		t.Logf("cp - stopped by %v: exit %d: %s", sig, res.Code, strings.TrimSpace(res.Stderr))
		if res.Code != 128+int(sig) {
			t.Errorf("cp - interrupted by %v: exit %d, want %d (%s)", sig, res.Code, 128+int(sig), res.Stderr)
		}
		noneLeft(t, inContainer(pid, "/tmp"), ".ready")
	}

	// Out, to a host dir, while a 1 GiB file is being written.
	host := t.TempDir()
	bg := r.coreBackground(nil, "cp", id+":/data/big", filepath.Join(host, "out"))
	var tmp []string
	waitFor(t, "a temporary file on the host", func() bool {
		tmp, _ = filepath.Glob(filepath.Join(host, "out", ".nucleus-tmp-*"))
		return len(tmp) > 0
	})
	bg.cmd.Process.Signal(syscall.SIGTERM)
	res := bg.wait(t)
	if res.Code != 143 {
		t.Errorf("cp interrupted by SIGTERM: exit %d, want 143 (%s)", res.Code, res.Stderr)
	}
	noneLeft(t, host)

	// Into an existing directory: what was complete stays, the
	// temporary file goes.
	os.Mkdir(filepath.Join(host, "keep"), 0o755)
	bg = r.coreBackground(nil, "cp", id+":/data/big/.", filepath.Join(host, "keep"))
	waitFor(t, "a temporary file on the host", func() bool {
		tmp, _ = filepath.Glob(filepath.Join(host, "keep", ".nucleus-tmp-*"))
		return len(tmp) > 0
	})
	bg.cmd.Process.Signal(syscall.SIGINT)
	if res := bg.wait(t); res.Code != 130 {
		t.Errorf("cp interrupted by SIGINT: exit %d, want 130 (%s)", res.Code, res.Stderr)
	}
	noneLeft(t, filepath.Join(host, "keep"), "a", "big")
	if _, err := os.Stat(filepath.Join(host, "keep", "big")); err == nil {
		t.Error("the interrupted file was left at its name")
	}
}

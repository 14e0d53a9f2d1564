package integration

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// `nucleus cp` runs as host root against a container that may be hostile:
// what the container plants (symlinks to the host's /etc or /, links
// swapped while the copy runs, set-id files) must never make the copy
// touch the host outside DEST, nor bring a privilege out.

// cpID is a fresh "cp-<name>-<random>" id, force-deleted at the end.
func cpID(t *testing.T, r *Runner, name string) string {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	id := "cp-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { _ = r.Cmd("delete", "--force", id).Run() })
	return id
}

// cpContainer starts a detached container that runs setup then waits, and
// waits for setup to have finished (it touches /tmp/.ready).
func cpContainer(t *testing.T, r *Runner, name, setup string, extra ...string) (string, *Bundle) {
	t.Helper()
	b := newBundle(t, "sh", "-c", setup+"\ntouch /tmp/.ready; exec sleep 1000")
	b.Spec.Root.Readonly = false
	b.Save(t)
	id := cpID(t, r, name)
	args := append([]string{"run", "-d"}, extra...)
	r.coreDetached(append(args, "--bundle", b.Dir, id)...)
	pid := r.corePid(id)
	waitFor(t, "the container's setup", func() bool {
		_, err := os.Stat(inContainer(pid, "/tmp/.ready"))
		return err == nil
	})
	return id, b
}

func sameFile(t *testing.T, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s changed: %q %v", p, got, err)
	}
}

func catIn(t *testing.T, r *Runner, id, p string) string {
	t.Helper()
	return r.OK("exec", id, "cat", p).Stdout
}

func TestCpSymlinkAttacks(t *testing.T) {
	r := newRunner(t)
	hostPasswd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	hostHostname, _ := os.ReadFile("/etc/hostname")
	id, _ := cpContainer(t, r, "attack", strings.Join([]string{
		"ln -s /etc /tmp/out", "ln -s / /tmp/x", "ln -s ../../../../../../etc/hostname /tmp/rel",
		"mkdir /tmp/d", "echo inner > /tmp/d/f", "ln -s /etc/passwd /tmp/d/evil", "ln -s /etc /tmp/d/evildir",
	}, "; "))
	host := t.TempDir()
	payload := filepath.Join(host, "payload")
	os.WriteFile(payload, []byte("pwned:x:0:0::/:/bin/sh\n"), 0o644)

	// In through /tmp/out -> /etc: the container's /etc/passwd, never the host's.
	r.OK("cp", payload, id+":/tmp/out/passwd")
	sameFile(t, "/etc/passwd", hostPasswd)
	if got := catIn(t, r, id, "/etc/passwd"); got != "pwned:x:0:0::/:/bin/sh\n" {
		t.Errorf("container /etc/passwd after cp into /tmp/out/passwd: %q", got)
	}
	// Through /tmp/x -> / and a relative link climbing out: chrooted.
	r.OK("cp", payload, id+":/tmp/x/etc/hostname")
	r.OK("cp", payload, id+":/tmp/rel")
	sameFile(t, "/etc/hostname", hostHostname)
	if got := catIn(t, r, id, "/etc/hostname"); got != "pwned:x:0:0::/:/bin/sh\n" {
		t.Errorf("container /etc/hostname: %q", got)
	}
	// A new file through /tmp/x: lands at the container's root.
	canary := "cp-canary-" + id
	r.OK("cp", payload, id+":/tmp/x/"+canary)
	if _, err := os.Lstat("/" + canary); err == nil {
		os.Remove("/" + canary)
		t.Fatalf("cp into %s:/tmp/x/%s wrote the host's /%s", id, canary, canary)
	}
	catIn(t, r, id, "/"+canary)

	// Out of /tmp/out/passwd: the container's file, not the host's.
	r.OK("cp", id+":/tmp/out/passwd", filepath.Join(host, "p"))
	sameFile(t, filepath.Join(host, "p"), []byte("pwned:x:0:0::/:/bin/sh\n"))
	// A link named as SRC comes out as the link, not what it points at.
	r.OK("cp", id+":/tmp/out", filepath.Join(host, "o"))
	if tgt, err := os.Readlink(filepath.Join(host, "o")); err != nil || tgt != "/etc" {
		t.Errorf("host o: %q %v, want the link to /etc", tgt, err)
	}
	// A dir holding links to /etc: links stay links, nothing followed.
	r.OK("cp", id+":/tmp/d", host)
	if tgt, _ := os.Readlink(filepath.Join(host, "d", "evil")); tgt != "/etc/passwd" {
		t.Errorf("d/evil: %q", tgt)
	}
	if fi, err := os.Lstat(filepath.Join(host, "d", "evildir")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("d/evildir is not a symlink: %v %v", fi, err)
	}
	// Copying the dir again onto the first copy (whose links now point at
	// the host's /etc) replaces the links, never writes through them.
	r.OK("cp", id+":/tmp/d", host)
	sameFile(t, "/etc/passwd", hostPasswd)
	// DEST on the host that is a link to /etc: replaced, not followed.
	os.Symlink("/etc/passwd", filepath.Join(host, "trap"))
	r.OK("cp", id+":/tmp/d/f", filepath.Join(host, "trap"))
	sameFile(t, "/etc/passwd", hostPasswd)
	sameFile(t, filepath.Join(host, "trap"), []byte("inner\n"))
	// A tar on stdin naming ../ or climbing through a link is refused.
	evil := tarOf(t, []tar.Header{{Name: "../../etc/cp-evil", Typeflag: tar.TypeReg, Mode: 0o644}})
	res := r.Run(evil, "cp", "-", id+":/tmp")
	if res.Code == 0 || !strings.Contains(res.Stderr, "leaves the destination") {
		t.Errorf("tar with ../: exit %d %q", res.Code, res.Stderr)
	}
	evil = tarOf(t, []tar.Header{
		{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
		{Name: "l/cp-evil", Typeflag: tar.TypeReg, Mode: 0o644},
	})
	res = r.Run(evil, "cp", "-", id+":/tmp")
	if res.Code == 0 || !strings.Contains(res.Stderr, "leaves the destination") {
		t.Errorf("tar through a link: exit %d %q", res.Code, res.Stderr)
	}
	if _, err := os.Lstat("/etc/cp-evil"); err == nil {
		os.Remove("/etc/cp-evil")
		t.Error("a tar on stdin wrote the host's /etc/cp-evil")
	}
}

// TestCpSymlinkSwapRace: the container flips /tmp/swap between a real
// directory and a link to / while cp writes into it, over and over; the
// host's root never gets the file.
func TestCpSymlinkSwapRace(t *testing.T) {
	r := newRunner(t)
	id, _ := cpContainer(t, r, "race", "mkdir /tmp/real; (while :; do ln -sfn / /tmp/swap; rm -f /tmp/swap; mkdir -p /tmp/swap; rmdir /tmp/swap; ln -sfn /tmp/real /tmp/swap; done) &")
	host := t.TempDir()
	name := "cp-race-" + id
	src := filepath.Join(host, name)
	os.WriteFile(src, []byte("x"), 0o644)
	os.Mkdir(filepath.Join(host, "dir"), 0o755)
	os.WriteFile(filepath.Join(host, "dir", name), []byte("x"), 0o644)
	landed := 0
	for i := 0; i < 100; i++ {
		for _, args := range [][]string{
			{"cp", src, id + ":/tmp/swap/"},
			{"cp", filepath.Join(host, "dir") + "/.", id + ":/tmp/swap"},
			{"cp", id + ":/tmp/swap/" + name, filepath.Join(host, "back")},
		} {
			if r.Run(nil, args...).Code == 0 {
				landed++
			}
		}
	}
	// Not vacuous: the copies ran, through the link as often as not.
	if landed == 0 {
		t.Fatal("no cp through /tmp/swap succeeded")
	}
	t.Logf("%d of 300 copies went through", landed)
	if _, err := os.Lstat("/" + name); err == nil {
		os.Remove("/" + name)
		t.Fatalf("a cp through a swapped link wrote the host's /%s", name)
	}
}

// tarOf is a tar stream of hdrs, each regular file holding "data".
func tarOf(t *testing.T, hdrs []tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = 4
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("data"))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestCpSetIDAndSpecialFiles(t *testing.T) {
	r := newRunner(t)
	id, _ := cpContainer(t, r, "setid", "echo s > /tmp/suid; chmod 6755 /tmp/suid; mkdir /tmp/dd; mkfifo /tmp/dd/fifo; echo k > /tmp/dd/keep; chmod 1777 /tmp/dd")
	host := t.TempDir()
	r.OK("cp", id+":/tmp/suid", filepath.Join(host, "suid"))
	fi, err := os.Stat(filepath.Join(host, "suid"))
	if err != nil || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("copied-out set-id file: %v %v, want 0755 without set-id bits", fi.Mode(), err)
	}
	res := r.OK("cp", id+":/tmp/dd", host)
	if !strings.Contains(res.Stderr, "fifo") || !strings.Contains(res.Stderr, "warning") {
		t.Errorf("special file skipped without a warning: %q", res.Stderr)
	}
	if _, err := os.Lstat(filepath.Join(host, "dd", "fifo")); err == nil {
		t.Error("a fifo was copied out")
	}
	if fi, err := os.Stat(filepath.Join(host, "dd")); err != nil || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("dir lost its sticky bit: %v %v", fi, err)
	}
	// Going in: set-id bits stripped too, also from a tar on stdin.
	os.WriteFile(filepath.Join(host, "in"), []byte("i"), 0o755)
	os.Chmod(filepath.Join(host, "in"), 0o6755)
	r.OK("cp", filepath.Join(host, "in"), id+":/tmp/in")
	if got := strings.TrimSpace(r.OK("exec", id, "stat", "-c", "%a", "/tmp/in").Stdout); got != "755" {
		t.Errorf("copied-in set-id file has mode %s, want 755", got)
	}
	r.Run(tarOf(t, []tar.Header{{Name: "t", Typeflag: tar.TypeReg, Mode: 0o4755}, {Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1}}), "cp", "-", id+":/tmp")
	if got := strings.TrimSpace(r.OK("exec", id, "stat", "-c", "%a", "/tmp/t").Stdout); got != "755" {
		t.Errorf("set-id file from a tar has mode %s, want 755", got)
	}
	if res := r.Run(nil, "exec", id, "test", "-e", "/tmp/dev"); res.Code == 0 {
		t.Error("a device node from a tar was made")
	}
}

func TestCpSemantics(t *testing.T) {
	r := newRunner(t)
	id, _ := cpContainer(t, r, "sem", "mkdir -p /tmp/src/sub/deep /tmp/exist; echo a > /tmp/src/a; echo b > /tmp/src/sub/deep/b; ln -s sub/deep/b /tmp/src/lnk; ln /tmp/src/a /tmp/src/hard; echo old > /tmp/file")
	host := t.TempDir()
	// A dir to a new name: created with its tree; links kept as links.
	r.OK("cp", id+":/tmp/src", filepath.Join(host, "new"))
	sameFile(t, filepath.Join(host, "new", "sub", "deep", "b"), []byte("b\n"))
	if tgt, _ := os.Readlink(filepath.Join(host, "new", "lnk")); tgt != "sub/deep/b" {
		t.Errorf("lnk: %q", tgt)
	}
	var a, h syscall.Stat_t
	syscall.Stat(filepath.Join(host, "new", "a"), &a)
	syscall.Stat(filepath.Join(host, "new", "hard"), &h)
	if a.Ino != h.Ino || a.Ino == 0 {
		t.Errorf("hard link not kept: %d %d", a.Ino, h.Ino)
	}
	// A dir into an existing dir: as dir/.
	r.OK("cp", id+":/tmp/src", host)
	sameFile(t, filepath.Join(host, "src", "a"), []byte("a\n"))
	// SRC/. copies its contents.
	os.Mkdir(filepath.Join(host, "contents"), 0o755)
	r.OK("cp", id+":/tmp/src/.", filepath.Join(host, "contents"))
	sameFile(t, filepath.Join(host, "contents", "a"), []byte("a\n"))
	if _, err := os.Stat(filepath.Join(host, "contents", "src")); err == nil {
		t.Error("SRC/. copied the directory, not its contents")
	}
	// SRC/. onto a new name: the directory is made with what SRC holds.
	r.OK("cp", id+":/tmp/src/.", filepath.Join(host, "fresh"))
	sameFile(t, filepath.Join(host, "fresh", "sub", "deep", "b"), []byte("b\n"))
	// File into an existing dir, file onto a file.
	r.OK("cp", id+":/tmp/file", host)
	sameFile(t, filepath.Join(host, "file"), []byte("old\n"))
	os.WriteFile(filepath.Join(host, "f2"), []byte("new\n"), 0o600)
	r.OK("cp", filepath.Join(host, "f2"), id+":/tmp/file")
	if got := catIn(t, r, id, "/tmp/file"); got != "new\n" {
		t.Errorf("file onto file: %q", got)
	}
	r.OK("cp", filepath.Join(host, "new"), id+":/tmp/exist")
	if got := catIn(t, r, id, "/tmp/exist/new/sub/deep/b"); got != "b\n" {
		t.Errorf("dir into dir: %q", got)
	}
	if got := strings.TrimSpace(r.OK("exec", id, "readlink", "/tmp/exist/new/lnk").Stdout); got != "sub/deep/b" {
		t.Errorf("link copied in: %q", got)
	}
	// Host paths relative to the caller's directory, both ways.
	for _, args := range [][]string{{"cp", "f2", id + ":/tmp/rel"}, {"cp", id + ":/tmp/rel", "rel-back"}} {
		cmd := r.Cmd(args...)
		cmd.Dir = host
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nucleus %v in %s: %v: %s", args, host, err, out)
		}
	}
	sameFile(t, filepath.Join(host, "rel-back"), []byte("new\n"))
	// Errors: one line each, naming what is wrong.
	r.Fail([]string{"/tmp/nope/x", "no such file"}, "cp", filepath.Join(host, "f2"), id+":/tmp/nope/x")
	r.Fail([]string{"/tmp/missing", "no such file"}, "cp", id+":/tmp/missing", host)
	r.Fail([]string{filepath.Join(host, "missing"), "no such file"}, "cp", filepath.Join(host, "missing"), id+":/tmp")
	r.Fail([]string{"/tmp/file/", "not a directory"}, "cp", filepath.Join(host, "f2"), id+":/tmp/file/")
	r.Fail([]string{"/tmp/file", "onto a non-directory"}, "cp", filepath.Join(host, "new"), id+":/tmp/file")
	r.Fail([]string{"does not exist"}, "cp", filepath.Join(host, "f2"), "cp-no-such-container:/tmp")
	r.Fail([]string{"CONTAINER:PATH"}, "cp", filepath.Join(host, "f2"), filepath.Join(host, "f3"))
	r.OK("kill", id, "KILL")
	r.WaitStatus(id, "stopped")
	r.Fail([]string{id, "not running"}, "cp", filepath.Join(host, "f2"), id+":/tmp")
}

func TestCpTarStreams(t *testing.T) {
	r := newRunner(t)
	id, _ := cpContainer(t, r, "tar", "mkdir -p /tmp/d/s; echo one > /tmp/d/one; ln -s one /tmp/d/l")
	// Out: a tar on stdout, the dir as its top entry.
	res := r.OK("cp", id+":/tmp/d", "-")
	names := map[string]*tar.Header{}
	tr := tar.NewReader(strings.NewReader(res.Stdout))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("cp to - is not a tar: %v", err)
		}
		names[h.Name] = h
	}
	for _, n := range []string{"d/", "d/s/", "d/one", "d/l"} {
		if names[n] == nil {
			t.Errorf("tar from cp lacks %s (has %v)", n, names)
		}
	}
	if h := names["d/l"]; h != nil && (h.Typeflag != tar.TypeSymlink || h.Linkname != "one") {
		t.Errorf("d/l: %c %q", h.Typeflag, h.Linkname)
	}
	// In: that very stream, extracted into another dir; and one made by tar(1).
	r.OK("exec", id, "mkdir", "/tmp/in")
	if res := r.Run([]byte(res.Stdout), "cp", "-", id+":/tmp/in"); res.Code != 0 {
		t.Fatalf("cp - : %s", res.Stderr)
	}
	if got := catIn(t, r, id, "/tmp/in/d/l"); got != "one\n" {
		t.Errorf("round trip: %q", got)
	}
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "x", "y"), 0o755)
	os.WriteFile(filepath.Join(src, "x", "y", "z"), []byte("zz"), 0o644)
	tarred, err := exec.Command("tar", "-C", src, "-cf", "-", "x").Output()
	if err != nil {
		t.Fatal(err)
	}
	if res := r.Run(tarred, "cp", "-", id+":/tmp"); res.Code != 0 {
		t.Fatalf("cp - from tar(1): %s", res.Stderr)
	}
	if got := catIn(t, r, id, "/tmp/x/y/z"); got != "zz" {
		t.Errorf("tar(1) stream: %q", got)
	}
	// A paused container's files can be copied too.
	r.OK("pause", id)
	r.OK("cp", id+":/tmp/d/one", filepath.Join(src, "paused"))
	r.OK("resume", id)
	sameFile(t, filepath.Join(src, "paused"), []byte("one\n"))
	// A tar stream must go into a directory.
	r.Fail([]string{"/tmp/d/one", "not a directory"}, "cp", "-", id+":/tmp/d/one")
}

func TestCpArchiveOwners(t *testing.T) {
	r := newRunner(t)
	id, _ := cpContainer(t, r, "own", "echo o > /tmp/owned")
	// The default config keeps no CAP_CHOWN: chown it from the host.
	if err := os.Chown(inContainer(r.corePid(id), "/tmp/owned"), 123, 456); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	r.OK("cp", id+":/tmp/owned", filepath.Join(host, "plain"))
	r.OK("cp", "-a", id+":/tmp/owned", filepath.Join(host, "kept"))
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(host, "plain"), &st)
	if st.Uid != 0 || st.Gid != 0 {
		t.Errorf("cp out without -a: owner %d:%d, want the caller's 0:0", st.Uid, st.Gid)
	}
	syscall.Stat(filepath.Join(host, "kept"), &st)
	if st.Uid != 123 || st.Gid != 456 {
		t.Errorf("cp -a out: owner %d:%d, want 123:456", st.Uid, st.Gid)
	}
	os.Chown(filepath.Join(host, "kept"), 1000, 1001)
	r.OK("cp", filepath.Join(host, "kept"), id+":/tmp/in-plain")
	r.OK("cp", "-a", filepath.Join(host, "kept"), id+":/tmp/in-kept")
	if got := strings.TrimSpace(r.OK("exec", id, "stat", "-c", "%u:%g", "/tmp/in-plain", "/tmp/in-kept").Stdout); got != "0:0\n1000:1001" {
		t.Errorf("owners inside: %q, want 0:0 then 1000:1001", got)
	}
}

// TestCpAgentMode: an agent-mode container (user namespace, read-only
// root, tmpfs /tmp, idmapped /workspace): copies land in /tmp and
// /workspace owned as the container's root (host uid 2^30 on /tmp, the
// workspace owner on the idmapped bind), the read-only root refuses.
func TestCpAgentMode(t *testing.T) {
	r := newRunner(t)
	ws := userWorkspace(t)
	id, _ := cpContainer(t, r, "agent", "true", "--mode", "agent", "--workspace", ws+":/workspace:bind-rw")
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "f"), []byte("agent\n"), 0o644)
	os.Chown(filepath.Join(host, "f"), 1000, 1000)
	r.OK("cp", filepath.Join(host, "f"), id+":/tmp/f")
	r.OK("cp", filepath.Join(host, "f"), id+":/workspace/f")
	if got := catIn(t, r, id, "/tmp/f"); got != "agent\n" {
		t.Errorf("/tmp/f: %q", got)
	}
	if got := strings.TrimSpace(r.OK("exec", id, "stat", "-c", "%u:%g", "/tmp/f").Stdout); got != "0:0" {
		t.Errorf("/tmp/f inside is owned by %s, want the container's root", got)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(ws, "f"), &st); err != nil {
		t.Fatalf("cp into /workspace did not reach the host workspace: %v", err)
	}
	if st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("workspace file on the host owned by %d:%d, want the workspace owner 1000:1000", st.Uid, st.Gid)
	}
	sameFile(t, filepath.Join(ws, "f"), []byte("agent\n"))
	r.OK("cp", "-a", filepath.Join(host, "f"), id+":/tmp/fa")
	if got := strings.TrimSpace(r.OK("exec", id, "stat", "-c", "%u:%g", "/tmp/fa").Stdout); got != "1000:1000" {
		t.Errorf("cp -a into the user namespace: %s, want 1000:1000", got)
	}
	// An owner the idmapped workspace cannot store: left to the container's
	// root (the workspace owner on the host), with a warning.
	res := r.OK("cp", "-a", filepath.Join(host, "f"), id+":/workspace/fa")
	if !strings.Contains(res.Stderr, "not representable") {
		t.Errorf("cp -a into the workspace with an unmapped owner: no warning: %q", res.Stderr)
	}
	if err := syscall.Stat(filepath.Join(ws, "fa"), &st); err != nil || st.Uid != 1000 {
		t.Errorf("workspace fa: uid %d %v, want the owner 1000", st.Uid, err)
	}
	// Out of /workspace and /tmp.
	r.OK("cp", id+":/workspace/f", filepath.Join(host, "back"))
	sameFile(t, filepath.Join(host, "back"), []byte("agent\n"))
	r.OK("cp", "-a", id+":/tmp/f", filepath.Join(host, "back-a"))
	syscall.Stat(filepath.Join(host, "back-a"), &st)
	if st.Uid != 0 {
		t.Errorf("cp -a out of agent mode: uid %d, want the container's view 0", st.Uid)
	}
	// The read-only root stays read-only.
	r.Fail([]string{"read-only"}, "cp", filepath.Join(host, "f"), id+":/etc/f")
}

// TestCpGvisorRefused: a gVisor container's files live in its sandbox's
// own kernel; cp refuses in one line rather than reach for a host path.
func TestCpGvisorRefused(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "sleep", "1000")
	id := cpID(t, r, "gvisor")
	r.createDetached(t, id, b.Dir)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "f"), []byte("f"), 0o644)
	r.Fail([]string{id, "gvisor engine", "not supported"}, "cp", filepath.Join(host, "f"), id+":/tmp")
	r.Fail([]string{id, "gvisor engine", "not supported"}, "cp", id+":/etc/passwd", host)
}

// TestCpCreatedAgentContainer: files copied into a created (not yet
// started) agent-mode container are there when its process starts.
func TestCpCreatedAgentContainer(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "cat", "/tmp/in/f")
	id := cpID(t, r, "created")
	out := r.createDetached(t, id, b.Dir, "--mode", "agent")
	src := filepath.Join(t.TempDir(), "in")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("before start\n"), 0o644)
	r.OK("cp", src, id+":/tmp")
	r.OK("start", id)
	r.WaitStatus(id, "stopped")
	if data, _ := os.ReadFile(out); string(data) != "before start\n" {
		t.Errorf("the container's process read %q", data)
	}
}

// TestCpMaxBytes: --max-bytes bounds what a copy writes, so a container
// that grows its tree without end cannot fill the host's disk through cp.
func TestCpMaxBytes(t *testing.T) {
	r := newRunner(t)
	id, _ := cpContainer(t, r, "max", "mkdir /tmp/d; dd if=/dev/zero of=/tmp/d/big bs=1024 count=1024 2>/dev/null; echo s > /tmp/d/a")
	host := t.TempDir()
	r.Fail([]string{"big", "budget", "--max-bytes", "64KiB"}, "cp", "--max-bytes", "64K", id+":/tmp/d", filepath.Join(host, "out"))
	// The directory the copy made is taken back with what it held.
	if _, err := os.Stat(filepath.Join(host, "out")); err == nil {
		t.Error("the copy stopped by its budget left its directory")
	}
	r.Fail([]string{"d/big", "budget"}, "cp", "--max-bytes", "64K", id+":/tmp/d", "-")
	r.Fail([]string{"--max-bytes", "lots"}, "cp", "--max-bytes", "lots", id+":/tmp/d", host)
	r.OK("cp", "--max-bytes", "2M", id+":/tmp/d", filepath.Join(host, "ok"))
	if fi, err := os.Stat(filepath.Join(host, "ok", "big")); err != nil || fi.Size() != 1<<20 {
		t.Errorf("within the budget: %v %v", fi, err)
	}
}

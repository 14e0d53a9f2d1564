package integration

// The kernel charges per-user counts (inotify instances and watches,
// queued signals, ...) up the user-namespace chain: at each level to the
// uid that created the namespace below (kernel/ucount.c). A sandbox's user
// namespace must therefore be created by its own unprivileged host uid,
// never by host root, or a sandboxed workload spends host root's quota.
// These tests are the attack: a sandbox exhausts a count while the host,
// as root, checks that its own is untouched. Ids are prefixed un-.

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ucountBundle is a busybox bundle with the attack program at /bin/ucount;
// it returns the bundle and the program's host copy.
func ucountBundle(t *testing.T) (*Bundle, string) {
	t.Helper()
	gcc := requireCmd(t, "gcc")
	_, err := os.Stat("/usr/lib/x86_64-linux-gnu/libc.a")
	need(t, err == nil, "needs glibc's static libc.a (apt-get install libc6-dev)")
	b := newBundle(t, "true")
	bin := filepath.Join(b.Rootfs, "bin", "ucount")
	if out, err := exec.Command(gcc, "-static", "-O1", "-o", bin, "testdata/ucount/ucount.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc -static ucount.c: %v\n%s", err, out)
	}
	return b, bin
}

// holdInSandbox starts `ucount what` in an agent sandbox and returns the
// line it printed once it holds what it took, and a function that ends
// the sandbox (closing its stdin) and checks nothing of it is left.
func holdInSandbox(t *testing.T, r *Runner, b *Bundle, id, what string) (string, func()) {
	t.Helper()
	cmd := r.Cmd("sandbox", "-i", "--bundle", b.Dir, "--id", id, "--", "ucount", what)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	end := func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Signal(syscall.SIGTERM)
			<-done
			t.Errorf("sandbox %s still running 30s after its stdin closed", id)
		}
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		if !strings.HasPrefix(line, "held ") {
			end()
			t.Fatalf("sandbox %s: ucount %s printed %q; stderr: %s", id, what, line, stderr.String())
		}
		return line, end
	case <-time.After(60 * time.Second):
		end()
		t.Fatalf("sandbox %s: ucount %s printed nothing in 60s; stderr: %s", id, what, stderr.String())
	}
	return "", nil
}

// TestUserNSOwnerInotify: a sandbox that opens inotify instances until the
// kernel refuses must not use up host root's fs.inotify.max_user_instances:
// host root (this test) still gets an instance while the sandbox holds
// all it could take.
func TestUserNSOwnerInotify(t *testing.T) {
	r := newRunner(t)
	b, _ := ucountBundle(t)
	line, end := holdInSandbox(t, r, b, "un-inotify", "inotify")
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err == nil {
		unix.Close(fd)
	}
	end()
	t.Logf("sandbox: %s", line)
	if !strings.HasSuffix(line, "errno EMFILE") {
		t.Errorf("sandbox: %s, want it stopped by EMFILE (the per-user limit)", line)
	}
	if err != nil {
		t.Errorf("host root's inotify_init1 while the sandbox held its instances: %v (the sandbox's instances were charged to host root)", err)
	}
}

// TestUserNSOwnerSigpending: a sandbox that queues real-time signals to
// itself past RLIMIT_SIGPENDING must not fill host root's pending-signal
// quota: host root's SigQ stays far from its limit and a host root process
// can still sigqueue while the sandbox holds its signals.
func TestUserNSOwnerSigpending(t *testing.T) {
	r := newRunner(t)
	b, bin := ucountBundle(t)
	line, end := holdInSandbox(t, r, b, "un-sigq", "sigqueue")
	status, _ := os.ReadFile("/proc/self/status")
	host, hostErr := exec.Command(bin, "sigq1").Output()
	end()
	t.Logf("sandbox: %s", line)
	var used, limit int
	for _, l := range strings.Split(string(status), "\n") {
		if f, ok := strings.CutPrefix(l, "SigQ:"); ok {
			u, lim, _ := strings.Cut(strings.TrimSpace(f), "/")
			used, _ = strconv.Atoi(u)
			limit, _ = strconv.Atoi(lim)
		}
	}
	if limit == 0 {
		t.Fatalf("no SigQ line in /proc/self/status:\n%s", status)
	}
	// The sandbox must have queued a lot (else the attack proved nothing).
	held, _, _ := strings.Cut(strings.TrimPrefix(line, "held "), "/")
	if n, _ := strconv.Atoi(held); n < limit/2 {
		t.Errorf("sandbox queued only %s, want about its RLIMIT_SIGPENDING", line)
	}
	if used > limit/2 {
		t.Errorf("host root's SigQ %d/%d while the sandbox held its signals: the sandbox's were charged to host root", used, limit)
	}
	if hostErr != nil || strings.TrimSpace(string(host)) != "ok" {
		t.Errorf("host root's sigqueue while the sandbox held its signals: %q %v", host, hostErr)
	}
}

// TestUserNSOwnerPinned: a detached sandbox's user namespace is pinned in
// its staging dir, created by host uid 2^30; the config's rlimits apply to
// the init and to exec'd processes (the pre-exec step sets them now that
// host root may not); SIGKILL of the init then delete --force, and a
// create that fails after the namespace exists, leave nothing behind.
func TestUserNSOwnerPinned(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "true")
	id := "un-pin"
	r.OK("sandbox", "--detach", "--bundle", b.Dir, "--id", id, "--", "sleep", "60")
	pin := filepath.Join(r.Root, "@rootfs-"+id, "userns")
	fd, err := unix.Open(pin, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("pinned user namespace: %v", err)
	}
	uid, err := unix.IoctlGetUint32(fd, unix.NS_GET_OWNER_UID)
	var pinned, initNS unix.Stat_t
	unix.Fstat(fd, &pinned)
	unix.Close(fd)
	if err != nil || uid != 1<<30 {
		t.Errorf("owner of %s: %d %v, want %d", pin, uid, err, 1<<30)
	}
	pid := r.corePid(id)
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/user", &initNS); err != nil || initNS.Ino != pinned.Ino {
		t.Errorf("the init's user namespace is not the pinned one (%d vs %d, %v)", initNS.Ino, pinned.Ino, err)
	}
	var nofile string
	for _, rl := range b.Spec.Process.Rlimits {
		if rl.Type == "RLIMIT_NOFILE" {
			nofile = strconv.FormatUint(rl.Soft, 10) + " " + strconv.FormatUint(rl.Hard, 10)
		}
	}
	if nofile == "" {
		t.Fatal("the default config has no RLIMIT_NOFILE to check")
	}
	if got := readLimits(t, "/proc/"+strconv.Itoa(pid)+"/limits"); got != nofile {
		t.Errorf("init's open-files limit %q, want the config's %q", got, nofile)
	}
	res := r.OK("exec", id, "sh", "-c", `echo "$(ulimit -Sn) $(ulimit -Hn)"; cat /proc/self/uid_map`)
	if !strings.HasPrefix(res.Stdout, nofile+"\n") || !strings.Contains(res.Stdout, "1073741824") {
		t.Errorf("exec'd process: %q, want rlimit %q and the sandbox's map", res.Stdout, nofile)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
	if _, err := os.Lstat(pin); !os.IsNotExist(err) {
		t.Errorf("%s left after delete --force: %v", pin, err)
	}

	// Fails in libcontainer's init, after the namespace was made.
	b.Spec.Mounts = append(b.Spec.Mounts, specMount("/nonexistent-un-src", "/mnt"))
	b.Save(t)
	id = "un-pin-fail"
	r.Fail(nil, "sandbox", "--bundle", b.Dir, "--id", id, "--", "true")
	assertNoLeftovers(t, r.Root, id, b.Dir)
	if left, _ := filepath.Glob(filepath.Join(r.Root, "@rootfs-*")); len(left) > 0 {
		t.Errorf("staging left after a failed create: %v", left)
	}
}

// readLimits returns "soft hard" of Max open files in a /proc limits file.
func readLimits(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(l, "Max open files"))
			if len(f) >= 2 {
				return f[0] + " " + f[1]
			}
		}
	}
	t.Fatalf("no open-files line in %s", path)
	return ""
}

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

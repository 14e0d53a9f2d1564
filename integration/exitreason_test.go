package integration

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The one line nucleus prints when it knows who ended a run, and the
// exit_reason audit event with it (runtime/outcome).

const agentAllowlist = "(see nucleus policy show; --seccomp-profile to extend)"

// expectExitLine checks the run's status and that the last line of its
// stderr is want, printed once.
func expectExitLine(t *testing.T, what string, res Result, code int, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(res.Stderr, "\n"), "\n")
	if res.Code != code || lines[len(lines)-1] != want || strings.Count(res.Stderr, want) != 1 {
		t.Errorf("%s: exit %d, stderr %q;\nwant exit %d and the last line %q, once", what, res.Code, res.Stderr, code, want)
	}
}

// expectExitEvent checks the audit log's one exit_reason event.
func expectExitEvent(t *testing.T, what, log string, want map[string]any) {
	t.Helper()
	events := auditEvents(t, log, "exit_reason")
	if len(events) != 1 {
		t.Errorf("%s: %d exit_reason events in the audit log, want 1: %v", what, len(events), events)
		return
	}
	for k, v := range want {
		if events[0][k] != v {
			t.Errorf("%s: exit_reason %s = %v, want %v (event %v)", what, k, events[0][k], v, events[0])
		}
	}
}

// untilRecordFound reruns a seccomp kill whose record the kernel did not
// print: it prints audit records at most 10 per 5 s (printk_ratelimit), and
// other tests on the host may have used them up.
func untilRecordFound(t *testing.T, run func(attempt int) Result) Result {
	t.Helper()
	return untilRecorded(t, run, func(res Result) bool {
		return !strings.Contains(res.Stderr, "the kernel's record naming it was not found")
	})
}

// untilRecorded reruns run, up to three times, while recorded says the
// kernel's record was missing.
func untilRecorded(t *testing.T, run func(attempt int) Result, recorded func(Result) bool) Result {
	t.Helper()
	var res Result
	for attempt := 0; attempt < 3; attempt++ {
		res = run(attempt)
		if recorded(res) {
			return res
		}
		t.Logf("attempt %d: the kernel's record was not printed (rate limit?); again in 5s", attempt)
		time.Sleep(5 * time.Second)
	}
	return res
}

// TestExitReasonSeccomp: a syscall outside the allowlist is named, from
// the kernel's record of the kill: made by the init (matched by pid) or by
// a child of it (matched by the container's host uid), under `sandbox`
// and `run`.
func TestExitReasonSeccomp(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	dir := t.TempDir()

	line := "killed by seccomp: syscall sysfs (139) is not in the agent allowlist " + agentAllowlist
	var log string
	res := untilRecordFound(t, func(i int) Result {
		log = filepath.Join(dir, "init"+string(rune('0'+i))+".jsonl")
		return r.sandbox(b, "kl-sec-init", []string{"--audit-log", log}, "probe", "unlisted-one", "sysfs")
	})
	if res.Stderr != line+"\n" || res.Code != 159 {
		t.Errorf("init killed: exit %d, stderr %q; want 159 and exactly %q", res.Code, res.Stderr, line)
	}
	expectExitEvent(t, "init killed", log, map[string]any{"reason": "seccomp", "syscall": "sysfs", "syscall_nr": 139.0,
		"status": 159.0, "signal": "SIGSYS", "message": line, "posture": "agent"})

	// The shell runs the probe as its child and reports its death.
	line = "killed by seccomp: syscall kcmp (312) is not in the agent allowlist " + agentAllowlist
	res = untilRecordFound(t, func(i int) Result {
		log = filepath.Join(dir, "child"+string(rune('0'+i))+".jsonl")
		return r.sandbox(b, "kl-sec-child", []string{"--audit-log", log, "--mode", "strict-agent"}, "sh", "-c", "probe unlisted-one kcmp; exit $?")
	})
	expectExitLine(t, "child killed", res, 159, strings.Replace(line, "agent", "strict-agent", 1))
	expectExitEvent(t, "child killed", log, map[string]any{"reason": "seccomp", "syscall": "kcmp", "syscall_nr": 312.0})

	// `run` in a mode says the same.
	b.Spec.Process.Args = []string{"probe", "unlisted-one", "sysfs"}
	b.Save(t)
	line = "killed by seccomp: syscall sysfs (139) is not in the agent allowlist " + agentAllowlist
	res = untilRecordFound(t, func(i int) Result {
		log = filepath.Join(dir, "run"+string(rune('0'+i))+".jsonl")
		res := r.Run(nil, "run", "--mode", "agent", "--audit-log", log, "--bundle", b.Dir, "kl-sec-run")
		assertNoLeftovers(t, r.Root, "kl-sec-run", b.Dir)
		return res
	})
	if res.Stderr != line+"\n" || res.Code != 159 {
		t.Errorf("run: exit %d, stderr %q; want 159 and exactly %q", res.Code, res.Stderr, line)
	}
	expectExitEvent(t, "run", log, map[string]any{"reason": "seccomp", "syscall": "sysfs"})

	// A run that ends well says nothing.
	res = r.sandbox(b, "kl-sec-ok", nil, "probe", "hello")
	if res.Code != 0 || res.Stderr != "" {
		t.Errorf("probe hello: exit %d, stderr %q; want 0 and nothing", res.Code, res.Stderr)
	}
}

// TestExitReasonOOM: a memory hog under --memory 32M is named the OOM
// killer's, from the memory cgroup read before it is removed.
func TestExitReasonOOM(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "true")
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	// The shell keeps the command's 100 MB of output in memory.
	res := r.sandbox(b, "kl-oom", []string{"--memory", "32M", "--audit-log", log},
		"sh", "-c", `a=$(head -c 100000000 /dev/zero | tr '\0' x); echo ${#a}`)
	line := "killed by the kernel's OOM killer: memory limit 32M reached (--memory to raise it)"
	expectExitLine(t, "hog", res, 137, line)
	expectExitEvent(t, "hog", log, map[string]any{"reason": "oom", "status": 137.0, "signal": "SIGKILL", "message": line})
	if ev := auditEvents(t, log, "exit_reason"); len(ev) == 1 {
		if peak, _ := ev[0]["peak_memory_bytes"].(float64); peak < 16<<20 || peak > 33<<20 {
			t.Errorf("peak_memory_bytes %v: want the hog's use, near the 32M limit", ev[0]["peak_memory_bytes"])
		}
	}
	// Killed by SIGKILL, but not by the OOM killer: no line.
	res = r.sandbox(b, "kl-oom-kill", []string{"--memory", "32M"}, "sh", "-c", "sleep 30 & kill -9 $!; wait $!")
	if res.Code != 137 || strings.Contains(res.Stderr, "killed by") {
		t.Errorf("kill -9: exit %d, stderr %q; want 137 and no line of nucleus's", res.Code, res.Stderr)
	}
}

// TestExitReasonTimeout: the sandbox's --timeout says it was nucleus.
func TestExitReasonTimeout(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "true")
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	res := r.sandbox(b, "kl-timeout", []string{"--timeout", "1s", "--audit-log", log}, "sleep", "30")
	line := "killed by nucleus: --timeout 1s expired"
	if res.Stderr != line+"\n" || res.Code != 124 {
		t.Errorf("timeout: exit %d, stderr %q; want 124 and exactly %q", res.Code, res.Stderr, line)
	}
	expectExitEvent(t, "timeout", log, map[string]any{"reason": "timeout", "status": 124.0, "detail": "--timeout 1s expired", "message": line})
	if len(auditEvents(t, log, "sandbox_timeout")) != 1 {
		t.Errorf("no sandbox_timeout event")
	}
}

// TestExitReasonLandlock: with the kernel's audit enabled, a run that
// fails after Landlock denied it an access names the denial, from the
// kernel's Landlock records of the container's domain. With audit off
// the kernel keeps no record, and nucleus claims nothing.
func TestExitReasonLandlock(t *testing.T) {
	r := newRunner(t)
	abi, _, _ := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */)
	need(t, int(abi) >= 7, "needs Landlock ABI 7 (Linux 6.15) for Landlock's audit records")
	b := newBundle(t, "true")
	scratchMount(b)
	b.Save(t)
	write := []string{"sh", "-c", "echo x > /dev/x"}

	setKernelAudit(t, 0)
	res := r.sandbox(b, "kl-ll-off", nil, write...)
	if res.Code != 1 || strings.Contains(res.Stderr, "landlock") {
		t.Errorf("audit off: exit %d, stderr %q; want 1 and no landlock line", res.Code, res.Stderr)
	}

	setKernelAudit(t, 1)
	// The kernel's records are rate-limited as a seccomp kill's are.
	named := func(res Result) bool { return strings.Contains(res.Stderr, "landlock denied") }
	dir := t.TempDir()
	var log string
	res = untilRecorded(t, func(i int) Result {
		log = filepath.Join(dir, "audit"+string(rune('0'+i))+".jsonl")
		return r.sandbox(b, "kl-ll-write", []string{"--audit-log", log}, write...)
	}, named)
	line := "landlock denied: creating a file in /dev (agent mode allows writes beneath /tmp, /dev/shm)"
	expectExitLine(t, "write", res, 1, line)
	expectExitEvent(t, "write", log, map[string]any{"reason": "landlock", "status": 1.0, "message": line})

	// /scratch allows exec as a mount; Landlock is what refuses it.
	flags := landlockPolicy(t, `{"write":["/scratch"],"no_exec_root":["/scratch"]}`)
	res = untilRecorded(t, func(int) Result {
		return r.sandbox(b, "kl-ll-exec", flags, "sh", "-c", "cp /bin/busybox /scratch/bb && /scratch/bb true")
	}, named)
	expectExitLine(t, "exec", res, 126, "landlock denied: exec of /scratch/bb (agent mode allows no exec beneath /tmp, /proc, /sys, /dev, /run, /scratch)")

	// A failure Landlock had no part in says nothing.
	res = r.sandbox(b, "kl-ll-fail", nil, "sh", "-c", "echo x > /tmp/x; exit 3")
	if res.Code != 3 || res.Stderr != "" {
		t.Errorf("exit 3: exit %d, stderr %q; want 3 and nothing", res.Code, res.Stderr)
	}
}

// setKernelAudit sets the kernel's audit_enabled (AUDIT_SET) and puts the
// value it had back when the test ends. Landlock logs denials only while
// it is on; no audit daemon runs here, so the kernel prints the records.
func setKernelAudit(t *testing.T, enabled uint32) {
	t.Helper()
	old, err := kernelAudit(0, false)
	need(t, err == nil, "needs the audit netlink socket (CAP_AUDIT_CONTROL): "+errString(err))
	if old == enabled {
		return
	}
	if old == 2 {
		need(t, false, "the kernel's audit configuration is locked (enabled=2)")
	}
	if _, err := kernelAudit(enabled, true); err != nil {
		t.Fatalf("set audit enabled=%d: %v", enabled, err)
	}
	t.Cleanup(func() {
		if _, err := kernelAudit(old, true); err != nil {
			t.Errorf("restore audit enabled=%d: %v", old, err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// kernelAudit asks the kernel's audit status (AUDIT_GET) and returns its
// enabled flag, after setting it (AUDIT_SET) when set is true.
func kernelAudit(enabled uint32, set bool) (uint32, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	typ, body := uint16(unix.AUDIT_GET), []byte(nil)
	flags := uint16(unix.NLM_F_REQUEST)
	if set {
		// struct audit_status: mask (AUDIT_STATUS_ENABLED), enabled.
		typ, body, flags = unix.AUDIT_SET, make([]byte, 8), flags|unix.NLM_F_ACK
		binary.NativeEndian.PutUint32(body, 1)
		binary.NativeEndian.PutUint32(body[4:], enabled)
	}
	msg := make([]byte, unix.NLMSG_HDRLEN+len(body))
	*(*unix.NlMsghdr)(unsafe.Pointer(&msg[0])) = unix.NlMsghdr{Len: uint32(len(msg)), Type: typ, Flags: flags, Seq: 1}
	copy(msg[unix.NLMSG_HDRLEN:], body)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, err
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return 0, err
		}
		if n < unix.NLMSG_HDRLEN {
			return 0, os.ErrInvalid
		}
		h := (*unix.NlMsghdr)(unsafe.Pointer(&buf[0]))
		switch h.Type {
		case unix.NLMSG_ERROR:
			if code := int32(binary.NativeEndian.Uint32(buf[unix.NLMSG_HDRLEN:])); code != 0 {
				return 0, unix.Errno(-code)
			}
			return enabled, nil // the ack of AUDIT_SET
		case unix.AUDIT_GET:
			return binary.NativeEndian.Uint32(buf[unix.NLMSG_HDRLEN+4:]), nil
		}
	}
}

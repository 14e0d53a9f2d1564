package seccomp

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The extension list adds only syscalls the built-in allowlist never
// mentions (a refusal stays a refusal), and none of those that widen reach
// or have a history of kernel bugs.
func TestTraceExtensions(t *testing.T) {
	mentioned := map[string]bool{}
	for _, o := range []Options{{}, {DenyMemfd: true}, {AllowNetlinkRoute: true}} {
		for _, r := range Builtin(o).Syscalls {
			for _, n := range r.Names {
				mentioned[n] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, n := range traceExtensions {
		if seen[n] {
			t.Errorf("%s is listed twice", n)
		}
		seen[n] = true
		if mentioned[n] {
			t.Errorf("%s is on the extension list but the built-in allowlist already decides it", n)
		}
		if _, err := libseccomp.GetSyscallFromNameByArch(n, libseccomp.ArchAMD64); err != nil {
			t.Logf("%s: unknown to this libseccomp (a profile naming it skips it): %v", n, err)
		}
	}
	for _, n := range []string{
		"execveat", "memfd_secret", "kcmp", "pidfd_getfd", "get_robust_list", "modify_ldt", "vmsplice",
		"fanotify_init", "fanotify_mark", "sethostname", "setdomainname",
		"setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
		"shmget", "shmat", "shmctl", "semget", "semop", "msgget", "msgsnd", "mq_open", "mq_timedsend",
		"sysfs", "ioprio_set", "sched_setattr", "sched_setscheduler", "setpriority",
		"io_setup", "io_submit", "io_getevents", "io_pgetevents", "mbind", "set_mempolicy", "migrate_pages", "move_pages",
		"pkey_alloc", "futex_waitv", "remap_file_pages", "uselib", "ustat", "_sysctl",
		"name_to_handle_at", "open_by_handle_at", "acct", "quotactl", "syslog", "iopl", "ioperm", "vhangup", "lookup_dcookie",
		"ptrace", "mount", "setuid", "clone3", "clone", "socket", "ioctl", "prctl",
	} {
		if IsTraceExtension(n) {
			t.Errorf("%s must not be on the extension list", n)
		}
	}
}

// The tracer refuses (EPERM) a syscall the floor never mentions unless it
// is on the extension list, and lets one on the list run.
func TestTracerDecideUnlisted(t *testing.T) {
	tr := &Tracer{floor: Builtin(Options{})}
	decide := func(name string, args ...uint64) unix.Errno {
		nr, err := libseccomp.GetSyscallFromNameByArch(name, libseccomp.ArchAMD64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d := libseccomp.ScmpNotifData{Syscall: nr, Arch: libseccomp.ArchAMD64, Args: args}
		got, errno := tr.decide(d)
		if got != name {
			t.Fatalf("decide names %s %q", name, got)
		}
		return errno
	}
	for _, n := range []string{"execveat", "memfd_secret", "kcmp", "pidfd_getfd", "modify_ldt", "vmsplice",
		"fanotify_init", "sethostname", "setxattr", "shmget", "sysfs", "ioprio_set", "sched_setattr", "mq_open", "io_setup"} {
		if e := decide(n); e != unix.EPERM {
			t.Errorf("%s: errno %v, want EPERM", n, e)
		}
	}
	for _, n := range []string{"getxattr", "timer_create", "epoll_pwait2", "splice", "msync", "membarrier", "read", "inotify_init1", "timerfd_create"} {
		if e := decide(n); e != 0 {
			t.Errorf("%s: errno %v, want it run", n, e)
		}
	}
	if e := decide("clone3"); e != unix.ENOSYS {
		t.Errorf("clone3: errno %v, want ENOSYS", e)
	}
	if e := decide("mount"); e != unix.EPERM {
		t.Errorf("mount: errno %v, want EPERM", e)
	}
}

// Generate adds only traced syscalls on the extension list; it leaves any
// other unmentioned one out (and says so), keeps the tracer's EPERM for
// those a trace saw refused, and kills by default.
func TestGenerateUnlisted(t *testing.T) {
	p, leftOut := Generate([]*Trace{
		{Syscalls: []string{"read", "getxattr", "splice", "kcmp", "execveat", "mount"}},
		{Syscalls: []string{"vmsplice"}, Refused: []string{"memfd_secret", "unknown-999", "getxattr", "mount", "kcmp"}},
	})
	if p.DefaultAction != specs.ActKillProcess {
		t.Errorf("default action %s", p.DefaultAction)
	}
	if want := []string{"execveat", "kcmp", "vmsplice"}; !equal(leftOut, want) {
		t.Errorf("left out %v, want %v", leftOut, want)
	}
	verdict := func(n string) Verdict { return Evaluate(p, n, [6]uint64{}) }
	for _, n := range []string{"read", "getxattr", "splice"} {
		if v := verdict(n); v.Action != specs.ActAllow {
			t.Errorf("%s: %s, want allowed", n, v.Action)
		}
	}
	for _, n := range []string{"execveat", "vmsplice", "timer_create", "unknown-999"} {
		if v := verdict(n); v.Action != specs.ActKillProcess {
			t.Errorf("%s: %s, want the default kill", n, v.Action)
		}
	}
	for _, n := range []string{"memfd_secret", "kcmp", "mount"} {
		if v := verdict(n); v.Action != specs.ActErrno || v.Errno != uint(unix.EPERM) {
			t.Errorf("%s: %s %d, want EPERM", n, v.Action, v.Errno)
		}
	}
	if _, err := Compile(p); err != nil {
		t.Errorf("generated profile does not compile: %v", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

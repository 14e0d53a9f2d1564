package integration

// The built-in allowlist's socket and ioctl filters, attacked from inside an
// agent sandbox, and the ordinary programs they must keep working. Ids are
// prefixed gs-.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// probeLines runs several probe checks in one sandbox: each line of the
// output is "name: <probe output>" (empty if the probe was killed).
func probeScript(checks [][]string) string {
	var sb strings.Builder
	for _, c := range checks {
		fmt.Fprintf(&sb, "echo \"%s: $(probe %s)\"; ", c[0], strings.Join(c[1:], " "))
	}
	return sb.String()
}

// socketChecks: TCP and UDP (with the type flags) and Unix sockets pass;
// SCTP, DCCP, raw, MPTCP and ICMP sockets are refused by the filter with
// EPERM (the kernel alone says EPROTONOSUPPORT, ESOCKTNOSUPPORT or allows
// them), before any protocol module could be loaded.
func socketChecks() (checks [][]string, want map[string]string) {
	want = map[string]string{}
	add := func(name string, fam, typ, proto int, w string) {
		checks = append(checks, []string{name, "socket", fmt.Sprint(fam), fmt.Sprint(typ), fmt.Sprint(proto)})
		want[name] = w
	}
	nbcx := unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC
	add("tcp", unix.AF_INET, unix.SOCK_STREAM, 0, "ALLOWED")
	add("tcp-flags", unix.AF_INET, unix.SOCK_STREAM|nbcx, unix.IPPROTO_TCP, "ALLOWED")
	add("udp6", unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP, "ALLOWED")
	add("unix", unix.AF_UNIX, unix.SOCK_SEQPACKET, 0, "ALLOWED")
	add("sctp", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP, "DENIED EPERM")
	add("sctp6-seqpacket", unix.AF_INET6, unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP, "DENIED EPERM")
	add("dccp", unix.AF_INET, unix.SOCK_DCCP, 0, "DENIED EPERM")
	add("dccp6", unix.AF_INET6, unix.SOCK_DCCP|nbcx, unix.IPPROTO_DCCP, "DENIED EPERM")
	add("raw", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP, "DENIED EPERM")
	add("ping", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, "DENIED EPERM")
	add("mptcp", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP, "DENIED EPERM")
	add("udplite", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE, "DENIED EPERM")
	// socketpair: only AF_UNIX (the kernel alone answers EOPNOTSUPP or
	// EAFNOSUPPORT for the others, after reaching the family's code).
	pair := func(name string, fam, typ, proto int, w string) {
		checks = append(checks, []string{name, "socketpair", fmt.Sprint(fam), fmt.Sprint(typ), fmt.Sprint(proto)})
		want[name] = w
	}
	pair("pair-unix", unix.AF_UNIX, unix.SOCK_STREAM, 0, "ALLOWED")
	pair("pair-unix-dgram", unix.AF_UNIX, unix.SOCK_DGRAM|nbcx, 0, "ALLOWED")
	pair("pair-unix-seqpacket", unix.AF_UNIX, unix.SOCK_SEQPACKET, 0, "ALLOWED")
	pair("pair-alg", unix.AF_ALG, unix.SOCK_SEQPACKET, 0, "DENIED EPERM")
	pair("pair-tipc", unix.AF_TIPC, unix.SOCK_RDM, 0, "DENIED EPERM")
	pair("pair-netlink", unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_NETFILTER, "DENIED EPERM")
	pair("pair-inet", unix.AF_INET, unix.SOCK_STREAM, 0, "DENIED EPERM")
	pair("pair-unix-hi", 1<<32|unix.AF_UNIX, unix.SOCK_STREAM, 0, "DENIED EPERM")
	return checks, want
}

func expectProbeLines(t *testing.T, res Result, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if !strings.Contains(res.Stdout, name+": "+w+"\n") {
			t.Errorf("%s: want %q; output %q (stderr %q, exit %d)", name, w, res.Stdout, res.Stderr, res.Code)
		}
	}
}

func TestPolicySocketFilter(t *testing.T) {
	checks, want := socketChecks()
	probeOnBothEngines(t, "gs-sock", checks, want)
}

// probeOnBothEngines runs the probe checks in an agent sandbox on the
// native engine and under gVisor, which enforces the same profile.
func probeOnBothEngines(t *testing.T, id string, checks [][]string, want map[string]string) {
	r := newRunner(t)
	b := probeBundle(t)
	expectProbeLines(t, r.sandbox(b, id, nil, "sh", "-c", probeScript(checks)), want)
	t.Run("gvisor", func(t *testing.T) {
		requireCmd(t, "runsc")
		res := r.sandbox(b, id+"-gv", []string{"--engine", "gvisor"}, "sh", "-c", probeScript(checks))
		expectProbeLines(t, res, want)
	})
}

// ioctlChecks: commands outside the allowlist are refused with EPERM, never
// killed: TIOCSETD (switching a tty's line discipline, the classic way into
// n_gsm/n_hdlc bugs; the kernel alone lets anyone set N_TTY), an unknown
// command (the kernel says ENOTTY) and FICLONE; TIOCSTI stays refused;
// the pty commands openpty needs pass.
func ioctlChecks() (checks [][]string, want map[string]string) {
	want = map[string]string{}
	add := func(name, path string, cmd uint64, w string) {
		checks = append(checks, []string{name, "ioctl", path, fmt.Sprintf("%#x", cmd)})
		want[name] = w
	}
	add("tiocsetd", "/dev/ptmx", unix.TIOCSETD, "DENIED EPERM")
	add("unknown", "/dev/ptmx", 0xdead, "DENIED EPERM")
	add("ficlone", "/dev/null", unix.FICLONE, "DENIED EPERM")
	add("tiocsti", "/dev/ptmx", unix.TIOCSTI, "DENIED EPERM")
	add("tiocgptn", "/dev/ptmx", unix.TIOCGPTN, "ALLOWED")
	add("tiocgwinsz", "/dev/ptmx", unix.TIOCGWINSZ, "ALLOWED")
	add("fionread", "/dev/ptmx", unix.TIOCINQ, "ALLOWED")
	return checks, want
}

func TestPolicyIoctlFilter(t *testing.T) {
	checks, want := ioctlChecks()
	probeOnBothEngines(t, "gs-ioctl", checks, want)
}

// hostUsrBundle is a busybox bundle with the host's /usr bind-mounted
// read-only (python3, git, perl and their libraries).
func hostUsrBundle(t *testing.T, bins ...string) *Bundle {
	t.Helper()
	for _, bin := range bins {
		_, err := os.Stat(bin)
		need(t, err == nil, "needs "+bin+" (apt-get install it; see scripts/debian-packages.txt)")
	}
	b := newBundle(t, "true")
	for _, l := range []string{"lib", "lib64"} {
		os.Symlink("usr/"+l, filepath.Join(b.Rootfs, l))
	}
	os.MkdirAll(filepath.Join(b.Rootfs, "usr"), 0o755)
	b.Spec.Mounts = append(b.Spec.Mounts, specMount("/usr", "/usr"))
	b.Save(t)
	return b
}

// ioctlWorkload exercises the ioctls ordinary programs make: busybox
// applets, Python's pty, termios, select, subprocess and terminal size,
// git and perl. Each step prints a word; the test wants them all.
const ioctlWorkload = `
set -e
export HOME=/tmp PATH=/usr/bin:/bin
busybox ls -l / >/dev/null; busybox ps >/dev/null; busybox top -b -n1 >/dev/null; busybox df >/dev/null
busybox tar cf /tmp/x.tar /etc/passwd; busybox gzip -c /etc/passwd | busybox wc -c >/dev/null
busybox find /etc >/dev/null; busybox awk '{print}' /etc/group >/dev/null; echo busybox-ok
/usr/bin/python3 -c '
import os, pty, select, subprocess, termios, tty, fcntl, struct, shutil, threading
m, s = os.openpty()
os.ttyname(s); tty.setraw(s); termios.tcsetattr(s, termios.TCSAFLUSH, termios.tcgetattr(s))
fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
assert os.get_terminal_size(s) == os.terminal_size((80, 24))
os.write(m, b"x"); select.select([s], [], [], 5); assert struct.unpack("i", fcntl.ioctl(s, termios.FIONREAD, b"\0"*4))[0] == 1
termios.tcflush(s, termios.TCIFLUSH); termios.tcdrain(s)
os.set_blocking(m, False); os.set_inheritable(m, True)
pid, fd = pty.fork()
if pid == 0:
    os.write(1, b"child %r" % os.isatty(0)); os._exit(0)
out = b""
while True:
    r, _, _ = select.select([fd], [], [], 5)
    try:
        d = os.read(fd, 100)
    except OSError:
        break
    if not d: break
    out += d
os.waitpid(pid, 0); assert b"child True" in out, out
assert subprocess.run(["echo", "sub"], capture_output=True).stdout == b"sub\n"
t = threading.Thread(target=lambda: None); t.start(); t.join()
print(shutil.get_terminal_size().columns > 0 and "python-ok")
'
cd /tmp && git init -q repo && cd repo && echo hi > f && git add f
git -c user.name=a -c user.email=a@b commit -qm one && git log --oneline | grep -q one && git status --short && echo git-ok
echo 'use POSIX; my $t = -t STDIN; system("true") == 0 or die; open(my $f, "<", "/etc/passwd") or die; my @l = <$f>; print "perl-ok\n";' | perl
`

func TestPolicyIoctlWorkloads(t *testing.T) {
	r := newRunner(t)
	b := hostUsrBundle(t, "/usr/bin/python3", "/usr/bin/git", "/usr/bin/perl")
	res := r.sandbox(b, "gs-ioctl-work", nil, "sh", "-c", ioctlWorkload)
	for _, w := range []string{"busybox-ok", "python-ok", "git-ok", "perl-ok"} {
		expectLine(t, res, w)
	}
}

// TestPolicyIoctlTerminalSession: an interactive agent-mode container on a
// real terminal (nucleus run under script(1), process.terminal set): the
// shell, stty, tty, Python's terminal size and job control all work.
func TestPolicyIoctlTerminalSession(t *testing.T) {
	script := requireCmd(t, "script")
	r := newRunner(t)
	b := hostUsrBundle(t, "/usr/bin/python3")
	b.Spec.Process.Terminal = true
	b.Spec.Process.Args = []string{"sh", "-c", "stty -a >/dev/null && tty && stty size; sleep 0.1 & wait; " +
		"/usr/bin/python3 -c 'import os,sys,termios; termios.tcgetattr(0); print(\"cols\", os.get_terminal_size().columns, sys.stdin.isatty())'; echo tty-session-ok"}
	b.Save(t)
	cmdline := strings.Join([]string{r.Bin, "--root", r.Root, "run", "--mode", "agent", "--bundle", b.Dir, "gs-tty"}, " ")
	cmd := r.Cmd()
	cmd.Path, cmd.Args = script, []string{script, "-qec", "stty cols 100 rows 30; " + cmdline, "/dev/null"}
	out, err := cmd.CombinedOutput()
	for _, w := range []string{"/dev/pts/", "30 100", "cols 100 True", "tty-session-ok"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("terminal session: %v; output lacks %q:\n%s", err, w, out)
		}
	}
	assertNoLeftovers(t, r.Root, "gs-tty", b.Dir)
}

// TestGvisorPolicyThreads: glibc's pthread_create under gVisor in agent
// mode. glibc tries clone3 first and falls back to clone only on ENOSYS;
// runsc up to 20221219 answers a SCMP_ACT_ERRNO rule with EPERM whatever
// its errnoRet, which made every thread creation fail.
func TestGvisorPolicyThreads(t *testing.T) {
	requireCmd(t, "runsc")
	r := newRunner(t)
	b := hostUsrBundle(t, "/usr/bin/python3")
	script := "import threading; r = []; ts = [threading.Thread(target=r.append, args=(i,)) for i in range(4)]; " +
		"[t.start() for t in ts]; [t.join() for t in ts]; print('threads', sorted(r))"
	res := r.sandbox(b, "gs-gv-threads", []string{"--engine", "gvisor"}, "/usr/bin/python3", "-c", script)
	expectLine(t, res, "threads [0, 1, 2, 3]")
	assertNoGvisorLeftovers(t, r, "gs-gv-threads", b.Dir)
}

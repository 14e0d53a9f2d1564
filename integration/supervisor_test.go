package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The supervisor: a held sandbox's pid 1 serves `nucleus exec` over a
// socket in the state dir (package supervise, preexec/supervise.c).

// supervisedSandbox starts a held sandbox of the probe bundle and
// registers its removal.
func supervisedSandbox(t *testing.T, r *Runner, id string, flags ...string) *Bundle {
	t.Helper()
	b := probeBundle(t)
	r.OK(append([]string{"sandbox", "--detach", "--id", id, "--bundle", b.Dir}, flags...)...)
	t.Cleanup(func() {
		_ = r.Cmd("delete", "--force", id).Run()
		assertNoSandboxLeftovers(t, r, id, b.Dir)
	})
	return b
}

// initHostPid is the host pid of the sandbox's pid 1.
func initHostPid(t *testing.T, r *Runner, id string) int {
	t.Helper()
	pid, ok := r.State(id)["pid"].(float64)
	if !ok || pid <= 0 {
		t.Fatalf("state of %s has no pid", id)
	}
	return int(pid)
}

// hostPidOf finds the host pid of the sandbox's process whose command
// line is cmd.
func hostPidOf(t *testing.T, init int, cmd string) int {
	t.Helper()
	var found int
	waitFor(t, "a process "+cmd+" in the sandbox", func() bool {
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range procs {
			pid, _ := strconv.Atoi(filepath.Base(p))
			if pid == init || cmdline(pid) != cmd {
				continue
			}
			ns1, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
			ns2, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
			if ns1 != "" && ns1 == ns2 {
				found = pid
				return true
			}
		}
		return false
	})
	return found
}

// TestSupervisorExec: exec into a held sandbox runs as a child of its pid
// 1, with the status, signals, stdio, environment and directory asked for;
// another user than the sandbox's goes through the runtime's own exec.
// Both clients are held to it: the C fast path (package fastexec), and
// the Go path it leaves everything else to (NUCLEUS_EXEC_FAST=0).
func TestSupervisorExec(t *testing.T) {
	for _, path := range []struct {
		name string
		env  []string
	}{{"fast", nil}, {"go", []string{"NUCLEUS_EXEC_FAST=0"}}} {
		t.Run(path.name, func(t *testing.T) {
			r := newRunner(t)
			r.Env = path.env
			id := "pl-sv-exec-" + path.name
			supervisedSandbox(t, r, id, "--env", "GREETING=hi")
			// Which client ran: only the Go runtime prints its init
			// trace (GODEBUG reaches nucleus, never the command).
			probe := r.Cmd("exec", id, "true")
			probe.Env = append(append(os.Environ(), path.env...), "GODEBUG=inittrace=1")
			out, err := probe.CombinedOutput()
			if goStarted := strings.Contains(string(out), "init runtime") || strings.Contains(string(out), "init main"); err != nil || goStarted != (path.name == "go") {
				t.Fatalf("exec took the wrong client (Go runtime started: %v; want %v): %v %s", goStarted, path.name == "go", err, out)
			}
			supervisorExecChecks(t, r, id)
		})
	}
}

func supervisorExecChecks(t *testing.T, r *Runner, id string) {
	// Supervised: the command's parent is pid 1. (A runc-style exec'd
	// process's parent is outside the sandbox: 0.)
	if out := r.OK("exec", id, "sh", "-c", "grep PPid /proc/$$/status").Stdout; strings.Join(strings.Fields(out), " ") != "PPid: 1" {
		t.Errorf("exec'd command's parent: %q, want pid 1 (the supervisor)", out)
	}
	if res := r.Run(nil, "exec", id, "sh", "-c", "exit 7"); res.Code != 7 {
		t.Errorf("exit 7: got %d, stderr %s", res.Code, res.Stderr)
	}
	if res := r.Run(nil, "exec", id, "sh", "-c", "kill -KILL $$"); res.Code != 137 {
		t.Errorf("killed by SIGKILL: got %d, want 137; stderr %s", res.Code, res.Stderr)
	}
	res := r.Run([]byte("from stdin\n"), "exec", id, "sh", "-c", "cat; echo to-err >&2; echo reopened > /dev/stderr")
	if res.Code != 0 || res.Stdout != "from stdin\n" || res.Stderr != "to-err\nreopened\n" {
		t.Errorf("stdio: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	if out := r.OK("exec", "--env", "FOO=bar", "--env", "GREETING=over", "--cwd", "/tmp", id, "sh", "-c", `echo "$FOO $GREETING $(pwd)"`).Stdout; out != "bar over /tmp\n" {
		t.Errorf("env and cwd: %q", out)
	}
	if out := r.OK("exec", id, "sh", "-c", `echo "$GREETING"`).Stdout; out != "hi\n" {
		t.Errorf("the sandbox's own env: %q", out)
	}
	res = r.Run(nil, "exec", id, "no-such-command")
	if res.Code != 127 || !strings.Contains(res.Stderr, "no-such-command: not found") {
		t.Errorf("missing command: exit %d, stderr %q", res.Code, res.Stderr)
	}
	res = r.Run(nil, "exec", "--cwd", "/no/such/dir", id, "true")
	if res.Code == 0 || !strings.Contains(res.Stderr, "/no/such/dir") {
		t.Errorf("missing cwd: exit %d, stderr %q", res.Code, res.Stderr)
	}
	// Another user: the supervisor has no capability to switch, so the
	// runtime's own exec runs it.
	if out := r.OK("exec", "-u", "1000:1000", id, "sh", "-c", "id -u; grep PPid /proc/$$/status").Stdout; strings.Join(strings.Fields(out), " ") != "1000 PPid: 0" {
		t.Errorf("exec -u 1000: %q, want uid 1000 from a runc-style exec", out)
	}
	// A signal to nucleus exec reaches the command.
	cmd := r.Cmd("exec", id, "sh", "-c", `trap 'echo got TERM; exit 5' TERM; echo ready; while :; do sleep 0.05; done`)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(stdout)
	if line, _ := rd.ReadString('\n'); line != "ready\n" {
		t.Fatalf("forwarding: first line %q", line)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	rest, _ := rd.ReadString('\n')
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 5 || rest != "got TERM\n" {
		t.Errorf("SIGTERM to nucleus exec: exit %d (%v), output %q", code, err, rest)
	}
	// A command that leaves a process holding its stdout returns with its
	// own status; the client does not wait for that process.
	if res, err := r.coreExecUpTo(40*time.Second, nil, "exec", id, "sh", "-c", "sleep 100 & echo started; exit 4"); err != nil || res.Code != 4 || res.Stdout != "started\n" {
		t.Errorf("exec leaving a process behind: %v exit %d stdout %q stderr %q", err, res.Code, res.Stdout, res.Stderr)
	}
	// Many at once, each with its own status and output.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := r.coreExec(nil, "exec", id, "sh", "-c", fmt.Sprintf("echo %d; exit %d", i, i))
			if err != nil || res.Code != i || res.Stdout != fmt.Sprintf("%d\n", i) {
				t.Errorf("concurrent exec %d: %v exit %d stdout %q stderr %q", i, err, res.Code, res.Stdout, res.Stderr)
			}
		}(i)
	}
	wg.Wait()
}

// statusLines are the confinement lines of /proc/PID/status.
func statusLines(data string) string {
	var out []string
	for _, l := range strings.Split(data, "\n") {
		for _, k := range []string{"Cap", "NoNewPrivs", "Seccomp", "Uid", "Gid", "Groups"} {
			if strings.HasPrefix(l, k) {
				out = append(out, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestSupervisorConfinement: a supervised command is confined exactly as
// the sandbox: pid 1's capabilities (none), no_new_privs, seccomp filters,
// ids, namespaces, cgroups and rlimits, and Landlock.
func TestSupervisorConfinement(t *testing.T) {
	r := newRunner(t)
	id := "pl-sv-conf"
	supervisedSandbox(t, r, id)
	init := initHostPid(t, r, id)
	// Both read from inside, so that ids show as the sandbox sees them.
	want := statusLines(r.OK("exec", id, "cat", "/proc/1/status").Stdout)
	if !strings.Contains(want, "CapEff: 0000000000000000") || !strings.Contains(want, "NoNewPrivs: 1") || !strings.Contains(want, "Seccomp: 2") {
		t.Fatalf("the sandbox's pid 1 is not confined:\n%s", want)
	}
	got := statusLines(r.OK("exec", id, "cat", "/proc/self/status").Stdout)
	if got != want {
		t.Errorf("exec'd command's status:\n%s\nwant pid 1's:\n%s", got, want)
	}
	expectLine(t, r.OK("exec", id, "probe", "write", "/dev/newfile"), "DENIED EACCES")
	expectLine(t, r.OK("exec", id, "probe", "ptrace"), "DENIED EPERM")

	// A long-running one, to compare from the host.
	cmd := r.Cmd("exec", id, "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := hostPidOf(t, init, "sleep 60")
	for _, ns := range []string{"pid", "mnt", "net", "ipc", "uts", "user", "cgroup"} {
		a, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", init, ns))
		b, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if a == "" || a != b {
			t.Errorf("namespace %s: command %q, pid 1 %q", ns, b, a)
		}
	}
	for _, f := range []string{"cgroup", "limits"} {
		a, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", init, f))
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("%s: command\n%s\npid 1\n%s", f, b, a)
		}
	}
	// An interrupt of nucleus exec is forwarded: sleep dies of it.
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("SIGINT to nucleus exec sleep: exit %d, want 130", code)
	}
}

// TestSupervisorAttacks: what the workload could try against the
// supervisor that serves exec: reach its socket, inherit or steal its
// descriptors, ptrace it, read its memory; and killing it from outside
// ends the sandbox with everything in it.
func TestSupervisorAttacks(t *testing.T) {
	r := newRunner(t)
	id := "pl-sv-attack"
	b := supervisedSandbox(t, r, id)
	dir := filepath.Join(r.Root, "@sandbox-"+id)
	sock := filepath.Join(dir, "supervisor.sock")
	for p, mode := range map[string]os.FileMode{dir: os.ModeDir | 0o700, sock: os.ModeSocket | 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != mode || st.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s: mode %v uid %d, want %v root", p, st.Mode(), st.Sys().(*syscall.Stat_t).Uid, mode)
		}
	}
	// The socket is nowhere in the sandbox's filesystem.
	if out := r.OK("exec", id, "sh", "-c", "find / -xdev -type s 2>/dev/null; find /run /tmp /dev -type s 2>/dev/null; true").Stdout; strings.TrimSpace(out) != "" {
		t.Errorf("sockets visible in the sandbox: %q", out)
	}
	// Only its own stdio reaches a command (and ls's handle on the
	// directory it lists).
	if fds := r.OK("exec", id, "ls", "/proc/self/fd").Stdout; strings.Join(strings.Fields(fds), " ") != "0 1 2 3" {
		t.Errorf("exec'd command holds descriptors %q, want 0 1 2 (and ls's 3)", fds)
	}
	// pid 1 runs as the same user in the same user namespace, in the same
	// Landlock domain: only its non-dumpable mm keeps these closed.
	res := r.OK("exec", id, "probe", "reach-init")
	for _, what := range []string{"proc-fd", "proc-environ", "proc-mem", "proc-cwd", "ptrace"} {
		if !strings.Contains(res.Stdout, what+": DENIED") {
			t.Errorf("the workload reached pid 1's %s:\n%s", what, res.Stdout)
		}
	}
	// prlimit64's own check is uids alone: lowering pid 1's limits would
	// lower every later exec's (an RLIMIT_NOFILE of 3 hung nucleus exec).
	res = r.OK("exec", id, "probe", "prlimit-init")
	for _, want := range []string{"prlimit-set-init: DENIED EPERM", "prlimit-set-self: ALLOWED"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("prlimit of pid 1: want %q in:\n%s", want, res.Stdout)
		}
	}
	if res := r.Run(nil, "exec", id, "sh", "-c", "echo more than a byte > /tmp/fsize"); res.Code != 0 {
		t.Errorf("a later exec inherited a lowered limit: exit %d, %s", res.Code, res.Stderr)
	}
	init := initHostPid(t, r, id)
	sockFd := ""
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", init))
	for _, e := range ents {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", init, e.Name())); strings.HasPrefix(l, "socket:") {
			sockFd = e.Name()
		}
	}
	if sockFd == "" {
		t.Fatalf("pid 1 holds no socket")
	}
	res = r.Run(nil, "exec", id, "probe", "pidfd-getfd-init", sockFd)
	if strings.Contains(res.Stdout, "pidfd_getfd: ALLOWED") {
		t.Errorf("the workload took pid 1's socket: %s", res.Stdout)
	}
	// kill -9 of the supervisor from outside ends everything in it.
	bg := r.Cmd("exec", id, "sh", "-c", "sleep 1000 & sleep 999")
	if err := bg.Start(); err != nil {
		t.Fatal(err)
	}
	kids := []int{hostPidOf(t, init, "sleep 1000"), hostPidOf(t, init, "sleep 999")}
	syscall.Kill(init, syscall.SIGKILL)
	done := make(chan error, 1)
	go func() { done <- bg.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		bg.Process.Kill()
		t.Fatalf("nucleus exec still waits after its sandbox's pid 1 was killed")
	}
	if bg.ProcessState.ExitCode() == 0 {
		t.Errorf("nucleus exec exited 0 after its sandbox was killed")
	}
	for _, k := range append(kids, init) {
		waitFor(t, fmt.Sprintf("process %d to die with the sandbox", k), func() bool { return !alive(k) })
	}
	r.WaitStatus(id, "stopped")
	r.Fail([]string{id}, "exec", id, "true")
	r.OK("delete", "--force", id)
	assertNoSandboxLeftovers(t, r, id, b.Dir)
}

// TestSupervisorSigtermFromInside: a command that signals pid 1 can only
// end the sandbox, never outlive it.
func TestSupervisorSigtermFromInside(t *testing.T) {
	r := newRunner(t)
	id := "pl-sv-term"
	supervisedSandbox(t, r, id)
	init := initHostPid(t, r, id)
	r.Run(nil, "exec", id, "sh", "-c", "kill -STOP 1; kill -KILL 1; true")
	if st := r.State(id); st["status"] != "running" {
		t.Fatalf("SIGSTOP/SIGKILL from inside stopped pid 1: %v", st["status"])
	}
	bg := exec.Command(r.Bin, "--root", r.Root, "exec", id, "sh", "-c", "setsid sleep 1000 & kill -TERM 1; sleep 1000")
	if err := bg.Start(); err != nil {
		t.Fatal(err)
	}
	go bg.Wait()
	r.WaitStatus(id, "stopped")
	waitFor(t, "pid 1 to be gone", func() bool { return !alive(init) })
}

// TestSupervisorMalformed: whatever a client sends (only host root can),
// the supervisor answers or hangs up, and serves the next request.
func TestSupervisorMalformed(t *testing.T) {
	r := newRunner(t)
	id := "pl-sv-garbage"
	supervisedSandbox(t, r, id)
	sock := filepath.Join(r.Root, "@sandbox-"+id, "supervisor.sock")
	null, _ := os.Open(os.DevNull)
	defer null.Close()
	fd := int(null.Fd())
	good := func() []byte {
		// cwd "/", argv ["true"], no env.
		b := make([]byte, 28)
		for i, v := range []uint32{0x3153584e, 28 + 2 + 5, 1, 0, 0, 0, 0} {
			binary.LittleEndian.PutUint32(b[i*4:], v)
		}
		return append(b, "/\x00true\x00"...)
	}
	rnd := make([]byte, 4096)
	rand.Read(rnd)
	cases := []struct {
		msg []byte
		fds []int
	}{
		{nil, nil},
		{[]byte("x"), nil},
		{rnd, []int{fd, fd, fd}},
		{good(), nil},
		{good(), []int{fd}},
		{good(), []int{fd, fd, fd, fd, fd}},
		{good()[:30], []int{fd, fd, fd}},
		{append(good(), 0), []int{fd, fd, fd}},
		{bytes.Repeat([]byte{0}, 200<<10), []int{fd, fd, fd}},
	}
	for i, c := range cases {
		conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
		if err != nil {
			t.Fatalf("case %d: connect: %v", i, err)
		}
		var oob []byte
		if c.fds != nil {
			oob = unix.UnixRights(c.fds...)
		}
		conn.WriteMsgUnix(c.msg, oob, nil)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		reply := make([]byte, 64)
		n, _ := conn.Read(reply)
		if n == 12 && binary.LittleEndian.Uint32(reply[4:]) != 4 {
			t.Errorf("case %d: malformed request got reply kind %d", i, binary.LittleEndian.Uint32(reply[4:]))
		}
		conn.Close()
	}
	// A process inside the sandbox's pid namespace (one that was handed
	// the socket's path or a connection) is refused, however well-formed
	// its request: only the host's nucleus, outside, is served.
	py := requireCmd(t, "python3")
	nsenter := requireCmd(t, "nsenter")
	script := `import socket,struct,os,sys
s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
body=b"/\0true\0"
hdr=struct.pack("<7I",0x3153584e,28+len(body),1,0,0,0,0)
fd=os.open("/dev/null",os.O_RDWR)
try:
    s.sendmsg([hdr+body],[(socket.SOL_SOCKET,socket.SCM_RIGHTS,struct.pack("3i",fd,fd,fd))])
    print("reply", len(s.recv(64)))
except OSError as e:
    print("refused", e.errno)
`
	out, err := exec.Command(nsenter, "--target", strconv.Itoa(initHostPid(t, r, id)), "--pid", "--", py, "-c", script, sock).CombinedOutput()
	if err != nil || (!strings.Contains(string(out), "reply 0") && !strings.Contains(string(out), "refused")) {
		t.Errorf("a client in the sandbox's pid namespace: %v: %s", err, out)
	}
	// A client that connects and never sends, and one that hangs up
	// mid-command, stall nothing.
	idle, err := net.Dial("unixpacket", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if out := r.OK("exec", id, "echo", "still serving").Stdout; out != "still serving\n" {
		t.Errorf("after malformed requests: %q", out)
	}
	if st := r.State(id); st["status"] != "running" {
		t.Errorf("sandbox after malformed requests: %v", st["status"])
	}
}

// TestSupervisorModes: strict-agent sandboxes are supervised too; one
// under a seccomp profile of the user's (which may not allow what the
// supervisor calls) only holds, and exec goes runc-style.
func TestSupervisorModes(t *testing.T) {
	r := newRunner(t)
	supervisedSandbox(t, r, "pl-sv-strict", "--mode", "strict-agent")
	if out := r.OK("exec", "pl-sv-strict", "sh", "-c", "grep PPid /proc/$$/status").Stdout; strings.Join(strings.Fields(out), " ") != "PPid: 1" {
		t.Errorf("strict-agent exec: %q, want a child of the supervisor", out)
	}
	calls := []string{"read", "write", "openat", "close", "exit_group", "execve", "brk", "mmap", "munmap", "mprotect", "arch_prctl",
		"set_tid_address", "set_robust_list", "rseq", "prlimit64", "getrandom", "newfstatat", "fstat", "rt_sigaction", "rt_sigprocmask",
		"rt_sigtimedwait", "wait4", "dup2", "clock_gettime", "fcntl", "getpid", "getppid", "exit", "uname", "ioctl", "getuid", "geteuid",
		"getgid", "getegid", "clone", "fork", "vfork", "lseek", "pread64", "readlink", "getcwd", "chdir", "access", "faccessat2", "statx",
		"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "prctl", "seccomp", "getdents64", "setrlimit", "sysinfo",
		"poll", "kill", "sched_getaffinity", "futex", "readlinkat", "stat", "lstat", "dup3", "pipe2", "gettid", "getpgrp", "setpgid",
		"getpgid", "tgkill", "capget", "umask", "sigaltstack", "rt_sigreturn", "nanosleep", "clock_nanosleep"}
	prof, _ := json.Marshal(map[string]any{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []map[string]any{{"names": calls, "action": "SCMP_ACT_ALLOW"}}})
	path := writeTemp(t, string(prof))
	supervisedSandbox(t, r, "pl-sv-prof", "--seccomp-profile", path)
	if _, err := os.Stat(filepath.Join(r.Root, "@sandbox-pl-sv-prof", "supervisor.sock")); err == nil {
		t.Errorf("a sandbox under the user's seccomp profile got a supervisor socket")
	}
	if out := r.OK("exec", "pl-sv-prof", "sh", "-c", "grep PPid /proc/$$/status").Stdout; strings.Join(strings.Fields(out), " ") != "PPid: 0" {
		t.Errorf("exec under the user's profile: %q, want runc-style", out)
	}
	if st := r.State("pl-sv-prof"); st["status"] != "running" {
		t.Errorf("held sandbox under the user's profile: %v", st["status"])
	}
}

package integration

// Tests for running a container as a service (issue 14): health checks,
// sd_notify against a real unixgram socket (what systemd listens on),
// --require-lockdown, the attestation a production Nix bundle needs, the
// systemd unit and the mount-flag verification. Container ids start with
// "hl-".

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func hlID(t testing.TB, r *Runner, name string) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := "hl-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { _ = r.Cmd("delete", "--force", id).Run() })
	return id
}

// prodFlags are what production mode requires: a memory limit and the
// built-in seccomp allowlist pinned by its digest.
func prodFlags(t *testing.T, r *Runner) []string {
	t.Helper()
	prof, sum := builtinProfile(t, r)
	return []string{"--mode", "production", "--memory", "256M", "--seccomp-profile", prof, "--seccomp-profile-sha256", sum}
}

// notifySocket is a unixgram socket the test listens on, as systemd does
// for a Type=notify service.
type notifySocket struct {
	Path string
	conn *net.UnixConn
	msgs chan notifyMsg
}

type notifyMsg struct {
	text string
	at   time.Time
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{Path: path, conn: conn, msgs: make(chan notifyMsg, 1000)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- notifyMsg{string(buf[:k]), time.Now()}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return n
}

// next is the next datagram, failing the test after limit.
func (n *notifySocket) next(t *testing.T, limit time.Duration) string {
	t.Helper()
	select {
	case m, ok := <-n.msgs:
		if !ok {
			t.Fatal("notify socket closed")
		}
		return m.text
	case <-time.After(limit):
		t.Fatalf("no datagram on the notify socket within %s", limit)
	}
	return ""
}

// none asserts that no datagram arrives for d.
func (n *notifySocket) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-n.msgs:
		t.Fatalf("unexpected datagram %q", m.text)
	case <-time.After(d):
	}
}

// until reads datagrams until one equals want; it returns those before.
func (n *notifySocket) until(t *testing.T, want string, limit time.Duration) []string {
	t.Helper()
	var before []string
	deadline := time.Now().Add(limit)
	for {
		m := n.next(t, time.Until(deadline))
		if m == want {
			return before
		}
		before = append(before, m)
	}
}

// serviceRun starts `nucleus run` in the background with extra
// environment.
func (r *Runner) serviceRun(env []string, args ...string) *bgRun {
	r.t.Helper()
	b := &bgRun{cmd: r.Cmd(args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = b.stdout, b.stderr
	b.cmd.Env = append(os.Environ(), env...)
	if err := b.cmd.Start(); err != nil {
		r.t.Fatalf("start nucleus %v: %v", args, err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	r.t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// healthOf is the health annotation `state` shows.
func healthOf(r *Runner, id string) string {
	res := r.Run(nil, "state", id)
	if res.Code != 0 {
		return ""
	}
	var st struct{ Annotations map[string]string }
	json.Unmarshal([]byte(res.Stdout), &st)
	return st.Annotations["org.nucleus.health"]
}

// hlAuditEvents are the audit log's events of one name.
func hlAuditEvents(t *testing.T, path, name string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(string(data), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(l), &e) == nil && e["event"] == name {
			out = append(out, e)
		}
	}
	return out
}

// TestServiceHealthUnhealthyStops: a production service whose health
// command passes, then fails, goes starting -> healthy -> unhealthy (in
// `state` and the audit log), and the foreground run stops it and exits
// non-zero with one line. The command runs in the container's
// confinement: it passes only with seccomp in filter mode, no_new_privs, a
// user namespace that does not map host root, in the container's pid
// namespace (a handful of processes, not the host's hundreds).
func TestServiceHealthUnhealthyStops(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "while ! test -f /tmp/ok; do sleep 0.1; done; sleep 600")
	id := hlID(t, r, "unhealthy")
	audit := filepath.Join(t.TempDir(), "audit.log")
	confined := `test -f /tmp/ok && grep -q '^Seccomp:.*2' /proc/self/status && grep -q '^NoNewPrivs:.*1' /proc/self/status && ! grep -qE '^ +0 +0 ' /proc/self/uid_map && test "$(ls -d /proc/[0-9]* | wc -l)" -lt 10`
	args := append(prodFlags(t, r), "--audit-log", audit, "--health-cmd", confined, "--health-interval", "200ms",
		"--health-retries", "2", "--bundle", b.Dir, id)
	run := r.serviceRun(nil, append([]string{"run"}, args...)...)
	waitFor(t, id+" running", func() bool { return r.Run(nil, "state", id).Code == 0 && healthOf(r, id) != "" })
	if h := healthOf(r, id); h != "starting" {
		t.Fatalf("health before /tmp/ok: %q, want starting", h)
	}
	// Host root is no one in the container's tmpfs: exec touches it.
	r.OK("exec", id, "touch", "/tmp/ok")
	waitFor(t, id+" healthy", func() bool { return healthOf(r, id) == "healthy" })
	r.OK("exec", id, "rm", "/tmp/ok")
	res := run.wait(t)
	if res.Code == 0 {
		t.Fatalf("unhealthy service: exit 0; stderr %s", res.Stderr)
	}
	if !strings.Contains(res.Stderr, "container "+id+": unhealthy (cmd: exit status 1); stopped") {
		t.Errorf("stderr %q: want the unhealthy line", res.Stderr)
	}
	var states []string
	for _, e := range hlAuditEvents(t, audit, "health_status") {
		states = append(states, fmt.Sprint(e["state"]))
	}
	if strings.Join(states, ",") != "starting,healthy,unhealthy" {
		t.Errorf("health_status events %v, want starting,healthy,unhealthy", states)
	}
	if len(hlAuditEvents(t, audit, "health_kill")) != 1 {
		t.Error("no health_kill event")
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestServiceOnUnhealthyIgnore: with --on-unhealthy ignore an unhealthy
// service keeps running (state says so) and the run ends with the
// workload's own status.
func TestServiceOnUnhealthyIgnore(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "while ! test -f /tmp/stop; do sleep 0.1; done; exit 3")
	id := hlID(t, r, "ignore")
	run := r.serviceRun(nil, append(append([]string{"run"}, prodFlags(t, r)...), "--health-cmd", "false", "--health-interval", "100ms",
		"--health-retries", "1", "--on-unhealthy", "ignore", "--bundle", b.Dir, id)...)
	waitFor(t, id+" unhealthy", func() bool { return healthOf(r, id) == "unhealthy" })
	if !alive(r.corePid(id)) {
		t.Fatal("ignored unhealthy service was stopped")
	}
	r.OK("exec", id, "touch", "/tmp/stop")
	res := run.wait(t)
	if res.Code != 3 || strings.Contains(res.Stderr, "unhealthy") {
		t.Errorf("exit %d, stderr %q; want the workload's 3 and no unhealthy line", res.Code, res.Stderr)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestServiceNotifyReadiness: with NOTIFY_SOCKET set, nucleus sends
// MAINPID=<the container's init> at once, and READY=1 only once the
// readiness probes (TCP and HTTP, from inside the container's network
// namespace, which has nothing but loopback) pass; WATCHDOG=1 follows
// while healthy, never before.
func TestServiceNotifyReadiness(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "while ! test -f /tmp/go; do sleep 0.1; done; echo ok > /tmp/index.html; exec httpd -f -p 127.0.0.1:8080 -h /tmp")
	id := hlID(t, r, "ready")
	n := listenNotify(t)
	run := r.serviceRun([]string{"NOTIFY_SOCKET=" + n.Path, "WATCHDOG_USEC=200000"},
		append(append([]string{"run"}, prodFlags(t, r)...), "--readiness-tcp", "8080", "--readiness-http", "/index.html:8080",
			"--health-interval", "100ms", "--health-start-period", "10m", "--bundle", b.Dir, id)...)
	first := n.next(t, 30*time.Second)
	pid := r.corePid(id)
	if first != "MAINPID="+strconv.Itoa(pid) {
		t.Fatalf("first datagram %q, want MAINPID=%d", first, pid)
	}
	// Nothing listens yet: no READY, no WATCHDOG.
	n.none(t, time.Second)
	if h := healthOf(r, id); h != "starting" {
		t.Errorf("health %q before the server runs, want starting", h)
	}
	r.OK("exec", id, "touch", "/tmp/go")
	before := n.until(t, "READY=1", 30*time.Second)
	if strings.Join(before, "|") != "STATUS=healthy" {
		t.Errorf("datagrams before READY=1: %q, want just STATUS=healthy", before)
	}
	if h := healthOf(r, id); h != "healthy" {
		t.Errorf("health %q once ready", h)
	}
	for i := 0; i < 2; i++ {
		if m := n.next(t, 5*time.Second); m != "WATCHDOG=1" {
			t.Errorf("datagram %q while healthy, want WATCHDOG=1", m)
		}
	}
	r.OK("kill", id, "KILL")
	res := run.wait(t)
	if res.Code != 137 {
		t.Errorf("exit %d, want 137; stderr %s", res.Code, res.Stderr)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestServiceNotifyPlain: without probes READY=1 follows MAINPID at once;
// run -d and create+start send the same pair.
func TestServiceNotifyPlain(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "600")
	n := listenNotify(t)
	env := []string{"NOTIFY_SOCKET=" + n.Path}

	id := hlID(t, r, "plain")
	run := r.serviceRun(env, append(append([]string{"run"}, prodFlags(t, r)...), "--bundle", b.Dir, id)...)
	m1, m2 := n.next(t, 30*time.Second), n.next(t, 10*time.Second)
	if m1 != "MAINPID="+strconv.Itoa(r.corePid(id)) || m2 != "READY=1" {
		t.Errorf("datagrams %q, %q; want MAINPID, READY=1", m1, m2)
	}
	r.OK("kill", id, "KILL")
	run.wait(t)

	for _, how := range []string{"detach", "start"} {
		id := hlID(t, r, how)
		var cmd *exec.Cmd
		if how == "detach" {
			cmd = r.Cmd(append(append([]string{"run", "-d"}, prodFlags(t, r)...), "--bundle", b.Dir, id)...)
		} else {
			res, err := r.coreExec(nil, append(append([]string{"create"}, prodFlags(t, r)...), "--bundle", b.Dir, id)...)
			if err != nil || res.Code != 0 {
				t.Fatalf("create: %v %+v", err, res)
			}
			n.none(t, 200*time.Millisecond)
			cmd = r.Cmd("start", id)
		}
		cmd.Env = append(os.Environ(), env...)
		// Files, not pipes: the container keeps what it inherits open.
		out, err := os.CreateTemp(t.TempDir(), "out")
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			data, _ := os.ReadFile(out.Name())
			t.Fatalf("%s: %v %s", how, err, data)
		}
		out.Close()
		m1, m2 := n.next(t, 10*time.Second), n.next(t, 10*time.Second)
		if m1 != "MAINPID="+strconv.Itoa(r.corePid(id)) || m2 != "READY=1" {
			t.Errorf("%s: datagrams %q, %q; want MAINPID, READY=1", how, m1, m2)
		}
		r.OK("delete", "--force", id)
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
}

// TestServiceNotifyPassthrough: the workload gets a socket at
// NOTIFY_SOCKET in the container and its own READY=1 and STATUS= are
// relayed; a MAINPID= of its choosing (pointing systemd at a host
// process) and unknown lines are dropped. READY=1 is not sent before the
// workload says so.
func TestServiceNotifyPassthrough(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	// The trailing exit keeps the shell from exec'ing its last command:
	// pid 1 whose environ the test reads must not be mid-execve (the
	// kernel shows an empty environ then; under load the test once read
	// one).
	b.Spec.Process.Args = []string{"sh", "-c", `while ! test -f /tmp/go; do sleep 0.1; done; ` +
		`probe sdnotify 'MAINPID=1\nSTATUS=warming up\nFDSTORE=1' 'READY=1' > /tmp/sent; sleep 600; exit 0`}
	b.Save(t)
	id := hlID(t, r, "pass")
	n := listenNotify(t)
	run := r.serviceRun([]string{"NOTIFY_SOCKET=" + n.Path},
		append(append([]string{"run"}, prodFlags(t, r)...), "--sd-notify", "passthrough", "--bundle", b.Dir, id)...)
	first := n.next(t, 30*time.Second)
	pid := r.corePid(id)
	if first != "MAINPID="+strconv.Itoa(pid) {
		t.Fatalf("first datagram %q, want MAINPID=%d", first, pid)
	}
	n.none(t, time.Second)
	r.OK("exec", id, "touch", "/tmp/go")
	if m := n.next(t, 10*time.Second); m != "STATUS=warming up" {
		t.Errorf("relayed %q, want only STATUS=warming up", m)
	}
	if m := n.next(t, 10*time.Second); m != "READY=1" {
		t.Errorf("relayed %q, want READY=1", m)
	}
	waitFor(t, "the workload's report", func() bool {
		return strings.Count(readTrim(inContainer(pid, "/tmp/sent")), "ALLOWED") == 2
	})
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if !strings.Contains(string(env), "NOTIFY_SOCKET=/run/nucleus-notify/notify.sock") {
		t.Errorf("workload environment lacks its NOTIFY_SOCKET: %q", env)
	}
	r.OK("kill", id, "KILL")
	run.wait(t)
	assertNoLeftovers(t, r.Root, id, b.Dir)
	if _, err := os.Stat(filepath.Join(r.Root, "@notify-"+id)); err == nil {
		t.Error("relay socket dir left behind")
	}
}

// TestServiceBadFlags: every bad service flag is a one-line error naming
// it, and nothing is left behind.
func TestServiceBadFlags(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "true")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--health-cmd", "true", "--health-interval", "soon"}, "--health-interval"},
		{[]string{"--health-cmd", "true", "--health-timeout", "-1s"}, "--health-timeout"},
		{[]string{"--health-cmd", "true", "--health-retries", "0"}, "--health-retries"},
		{[]string{"--health-cmd", "true", "--health-start-period", "x"}, "--health-start-period"},
		{[]string{"--health-interval", "1s"}, "--health-interval"},
		{[]string{"--readiness-tcp", "70000"}, "--readiness-tcp"},
		{[]string{"--readiness-http", "8080"}, "--readiness-http"},
		{[]string{"--readiness-http", "health:8080"}, "--readiness-http"},
		{[]string{"--health-cmd", "true", "--on-unhealthy", "restart"}, "--on-unhealthy"},
		{[]string{"--sd-notify", "yes"}, "--sd-notify"},
		{[]string{"--health-cmd", "true", "-d"}, "--health-cmd"},
		{[]string{"--require-lockdown", "none"}, "--require-lockdown"},
	} {
		id := hlID(t, r, "bad")
		r.Fail([]string{c.want}, append(append([]string{"run"}, c.args...), "--bundle", b.Dir, id)...)
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
}

// TestServiceRequireLockdown: this kernel has no lockdown LSM: a start
// that requires lockdown is refused in one line naming the flag, not let
// through; on a kernel that reports a level the check reads it.
func TestServiceRequireLockdown(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "true")
	for _, level := range []string{"integrity", "confidentiality"} {
		id := hlID(t, r, "lockdown")
		data, err := os.ReadFile("/sys/kernel/security/lockdown")
		if err != nil {
			r.Fail([]string{"--require-lockdown", level, "no lockdown LSM", "refusing"},
				append(append([]string{"run"}, prodFlags(t, r)...), "--require-lockdown", level, "--bundle", b.Dir, id)...)
			r.Fail([]string{"--require-lockdown", "no lockdown LSM"}, "create", "--require-lockdown", level, "--bundle", b.Dir, id)
		} else if strings.Contains(string(data), "["+level+"]") || level == "integrity" && strings.Contains(string(data), "[confidentiality]") {
			r.OK(append(append([]string{"run"}, prodFlags(t, r)...), "--require-lockdown", level, "--bundle", b.Dir, id)...)
		} else {
			r.Fail([]string{"--require-lockdown", level}, "run", "--require-lockdown", level, "--bundle", b.Dir, id)
		}
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
}

// TestServiceNixNeedsAttestation: a production start of a bundle made by
// `nucleus bundle` is refused unless --verify-attestation checks it, also
// when its attestation.json has been removed (its config still says it is
// a Nix bundle); verified, it runs.
func TestServiceNixNeedsAttestation(t *testing.T) {
	r, cache := nixEnv(t)
	flake := nixFlakeCopy(t)
	dir, _ := nixBundle(t, r, cache, flake+"#agent-example", "--", "sh", "-c", "echo prod-ok")
	prod := prodFlags(t, r)

	id := hlID(t, r, "nix")
	r.Fail([]string{"--verify-attestation", "Nix bundle", "production"}, append(append([]string{"run"}, prod...), "--bundle", dir, id)...)
	assertNoLeftovers(t, r.Root, id, dir)
	r.Fail([]string{"--verify-attestation"}, append(append([]string{"create"}, prod...), "--bundle", dir, id)...)
	assertNoLeftovers(t, r.Root, id, dir)

	att := filepath.Join(dir, "attestation.json")
	if err := os.Rename(att, att+".away"); err != nil {
		t.Fatal(err)
	}
	r.Fail([]string{"--verify-attestation", "Nix bundle"}, append(append([]string{"run"}, prod...), "--bundle", dir, id)...)
	assertNoLeftovers(t, r.Root, id, dir)
	if err := os.Rename(att+".away", att); err != nil {
		t.Fatal(err)
	}

	res := r.OK(append(append([]string{"run"}, prod...), "--verify-attestation", "--bundle", dir, id)...)
	if !strings.Contains(res.Stdout, "prod-ok") {
		t.Errorf("verified production run: stdout %q", res.Stdout)
	}
	assertNoLeftovers(t, r.Root, id, dir)
}

// unitWords splits an Exec*= line as systemd does for what
// systemdunit.Quote writes: whitespace-separated words, double-quoted
// words with \\ \" \n \t escapes, $$ and %% for $ and %.
func unitWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	in, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			switch line[i] {
			case 'n':
				w.WriteByte('\n')
			case 't':
				w.WriteByte('\t')
			default:
				w.WriteByte(line[i])
			}
		case c == '"':
			quoted, in = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		case (c == '$' || c == '%') && i+1 < len(line) && line[i+1] == c:
			i++
			w.WriteByte(c)
			in = true
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quotes in %q", line)
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

// TestServiceSystemdUnit: `nucleus systemd-unit` prints a unit that
// systemd-analyze accepts; its ExecStart, run as systemd runs it (the
// words unquoted as systemd reads them, with NOTIFY_SOCKET set), starts
// the service in production mode and reports it ready; ExecStopPost
// removes it.
func TestServiceSystemdUnit(t *testing.T) {
	r := newRunner(t)
	analyze := requireCmd(t, "systemd-analyze")
	b := newBundle(t, "sh", "-c", "echo ok > /tmp/index.html; exec httpd -f -p 127.0.0.1:8080 -h /tmp")
	id := hlID(t, r, "unit")
	prof, sum := builtinProfile(t, r)
	check := `test "$(cat /tmp/index.html)" = ok && echo 100% "fine"`
	unit := r.OK("systemd-unit", id, "--memory", "256M", "--seccomp-profile", prof, "--seccomp-profile-sha256", sum,
		"--bundle", b.Dir, "--readiness-http", "/index.html:8080", "--health-cmd", check, "--health-interval", "100ms").Stdout
	lines := map[string]string{}
	for _, l := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			lines[k] = v
		}
	}
	for k, want := range map[string]string{"Type": "notify", "NotifyAccess": "all", "KillMode": "mixed", "Restart": "on-failure"} {
		if lines[k] != want {
			t.Errorf("%s=%q, want %q", k, lines[k], want)
		}
	}
	start := unitWords(t, lines["ExecStart"])
	if !filepath.IsAbs(start[0]) || !slicesContainsSeq(start, "run", "--mode", "production") || start[len(start)-1] != id {
		t.Errorf("ExecStart %q: want an absolute nucleus, run --mode production, the name last", start)
	}
	if !slicesContainsSeq(start, "--root", r.Root) || !slicesContainsSeq(start, "--health-cmd", check) {
		t.Errorf("ExecStart %q: want --root %s and the health command as given", start, r.Root)
	}
	stop := unitWords(t, lines["ExecStopPost"])
	if !slicesContainsSeq(stop, "delete", "--force", id) || stop[0] != start[0] {
		t.Errorf("ExecStopPost %q", stop)
	}
	// Flags run would refuse are refused now, in one line naming them.
	for _, c := range []struct{ args, want []string }{
		{[]string{"--bogus"}, []string{"unknown run flag --bogus"}},
		{[]string{"-d"}, []string{"--detach"}},
		{[]string{"--mode", "agent"}, []string{"--mode", "production"}},
		{[]string{"--health-cmd", "true", "--health-interval", "soon"}, []string{"--health-interval"}},
		{[]string{"--memory"}, []string{"--memory", "needs a value"}},
		{[]string{"--net", "bridge", "--publish", "x"}, []string{"--publish"}},
	} {
		res := r.Fail(c.want, append([]string{"systemd-unit", id}, c.args...)...)
		if res.Stdout != "" {
			t.Errorf("systemd-unit %v printed %q", c.args, res.Stdout)
		}
	}
	file := filepath.Join(t.TempDir(), id+".service")
	os.WriteFile(file, []byte(unit), 0o644)
	out, err := exec.Command(analyze, "verify", "--man=no", file).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s\n%s", err, out, unit)
	}

	n := listenNotify(t)
	svc := exec.Command(start[0], start[1:]...)
	svc.Dir = "/"
	svc.Env = append(os.Environ(), "NOTIFY_SOCKET="+n.Path)
	logf, _ := os.Create(filepath.Join(t.TempDir(), "log"))
	svc.Stdout, svc.Stderr = logf, logf
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { svc.Wait(); close(done) }()
	t.Cleanup(func() { svc.Process.Kill(); <-done })
	if m := n.next(t, 30*time.Second); !strings.HasPrefix(m, "MAINPID=") {
		t.Errorf("first datagram %q", m)
	}
	n.until(t, "READY=1", 30*time.Second)
	if h := healthOf(r, id); h != "healthy" {
		t.Errorf("health %q", h)
	}
	if out, err := exec.Command(stop[0], stop[1:]...).CombinedOutput(); err != nil {
		t.Errorf("ExecStopPost: %v %s", err, out)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the service's nucleus run did not end after ExecStopPost")
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// slicesContainsSeq reports whether seq appears in s, in order, adjacent.
func slicesContainsSeq(s []string, seq ...string) bool {
	for i := 0; i+len(seq) <= len(s); i++ {
		if strings.Join(s[i:i+len(seq)], "\x00") == strings.Join(seq, "\x00") {
			return true
		}
	}
	return false
}

// TestServiceMountFlagsCgroupRoot: the config's /sys/fs/cgroup mount says
// ro, but on a cgroup v1 host libcontainer mounts a writable tmpfs there
// for the hierarchies (the mount audit, reading every mount back, found
// it). Now the root is read-only for real and the audit passes.
func TestServiceMountFlagsCgroupRoot(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "grep ' /sys/fs/cgroup ' /proc/self/mountinfo | tail -1 | cut -d' ' -f6; mkdir /sys/fs/cgroup/x")
	id := hlID(t, r, "cgroot")
	audit := filepath.Join(t.TempDir(), "audit.log")
	res := r.Run(nil, append(append([]string{"run"}, prodFlags(t, r)...), "--audit-log", audit, "--bundle", b.Dir, id)...)
	opts := strings.Split(strings.TrimSpace(res.Stdout), ",")
	if len(opts) == 0 || opts[0] != "ro" {
		t.Errorf("/sys/fs/cgroup in the container: %q, want ro", res.Stdout)
	}
	if !strings.Contains(res.Stderr, "Read-only file system") {
		t.Errorf("mkdir /sys/fs/cgroup/x: %q, want Read-only file system", res.Stderr)
	}
	ev := hlAuditEvents(t, audit, "mount_audit")
	if len(ev) != 1 || ev[0]["passed"] != true {
		t.Errorf("mount_audit events %v, want one that passed", ev)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestServiceMountFlagsSubmountCaught: a read-only workspace whose host
// directory holds a mount: the recursive bind brings that submount into
// the container with none of the workspace's flags (rw, suid, dev, exec).
// Production mode reads every mount back before the workload runs and
// refuses, naming the mount, in the audit log too.
func TestServiceMountFlagsSubmountCaught(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "echo workload-ran")
	ws := t.TempDir()
	os.Chmod(ws, 0o755)
	sub := filepath.Join(ws, "sub")
	os.Mkdir(sub, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "hl-sub", sub).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", sub).Run() })
	id := hlID(t, r, "submount")
	audit := filepath.Join(t.TempDir(), "audit.log")
	res := r.Fail([]string{"mount audit failed", "/workspace/sub", "missing ro,nosuid,nodev,noexec", "under /workspace"},
		append(append([]string{"run"}, prodFlags(t, r)...), "--audit-log", audit, "--workspace", ws+":/workspace:bind-ro", "--bundle", b.Dir, id)...)
	if strings.Contains(res.Stdout, "workload-ran") {
		t.Error("the workload ran")
	}
	ev := hlAuditEvents(t, audit, "mount_audit")
	if len(ev) != 1 || ev[0]["passed"] != false || fmt.Sprint(ev[0]["failed_mounts"]) != "[/workspace/sub]" {
		t.Errorf("mount_audit events %v, want one failing /workspace/sub", ev)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)

	// Without the submount the same workspace runs.
	exec.Command("umount", sub).Run()
	res = r.OK(append(append([]string{"run"}, prodFlags(t, r)...), "--workspace", ws+":/workspace:bind-ro", "--bundle", b.Dir, id)...)
	if !strings.Contains(res.Stdout, "workload-ran") {
		t.Errorf("stdout %q", res.Stdout)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestServiceHealthTimeout: a health command that outlives
// --health-timeout is killed and counts as a failure.
func TestServiceHealthTimeout(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "600")
	id := hlID(t, r, "timeout")
	res := r.Run(nil, append(append([]string{"run"}, prodFlags(t, r)...), "--health-cmd", "sleep 600", "--health-timeout", "300ms",
		"--health-retries", "1", "--bundle", b.Dir, id)...)
	if res.Code == 0 || !strings.Contains(res.Stderr, "unhealthy (cmd: timed out after 300ms); stopped") {
		t.Errorf("exit %d, stderr %q", res.Code, res.Stderr)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

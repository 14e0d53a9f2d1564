package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Long-lived sandboxes (sandbox --detach), the sandbox's process flags and
// what a sandbox leaves behind.

// assertNoSandboxLeftovers adds a sandbox's own dirs to assertNoLeftovers.
func assertNoSandboxLeftovers(t *testing.T, r *Runner, id, bundle string) {
	t.Helper()
	assertNoLeftovers(t, r.Root, id, bundle)
	for _, d := range []string{"@sandbox-" + id, "@workspace-" + id} {
		if _, err := os.Stat(filepath.Join(r.Root, d)); err == nil {
			t.Errorf("leftover %s", d)
		}
	}
}

// TestSandboxDetachExecDelete: a detached sandbox holds itself open; exec
// runs in it with the sandbox's env and working directory; delete writes
// its copy-in-out workspace back and leaves nothing.
func TestSandboxDetachExecDelete(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	ws := userWorkspace(t)
	os.WriteFile(filepath.Join(ws, "in.txt"), []byte("from host\n"), 0o644)
	chownTree(t, ws, 1000, 1000)
	id := "sl-detach"
	res := r.OK("sandbox", "--detach", "--id", id, "--bundle", b.Dir, "--workspace", ws+":copy-in-out", "--env", "GREETING=hi there")
	if strings.TrimSpace(res.Stdout) != id {
		t.Fatalf("sandbox --detach printed %q, want the id", res.Stdout)
	}
	if st := r.State(id); st["status"] != "running" {
		t.Fatalf("detached sandbox is %v", st["status"])
	}
	out := r.OK("exec", id, "sh", "-c", `pwd; echo "$GREETING"; cat in.txt; echo made > out.txt`).Stdout
	if out != "/workspace\nhi there\nfrom host\n" {
		t.Errorf("exec in the sandbox: %q", out)
	}
	// A second command sees the first one's files: one sandbox, many commands.
	if out := r.OK("exec", id, "cat", "/workspace/out.txt").Stdout; out != "made\n" {
		t.Errorf("second exec: %q", out)
	}
	// The held init is pid 1 and reaps what exec'd commands leave behind.
	r.OK("exec", id, "sh", "-c", "sleep 0.2 & exit 0")
	time.Sleep(500 * time.Millisecond)
	if ps := r.OK("exec", id, "ps", "-o", "pid,stat,comm").Stdout; strings.Contains(ps, " Z") {
		t.Errorf("zombie left in the sandbox:\n%s", ps)
	}
	if _, err := os.Stat(filepath.Join(ws, "out.txt")); err == nil {
		t.Errorf("copy-in-out wrote back before delete")
	}
	r.OK("delete", id)
	if data, _ := os.ReadFile(filepath.Join(ws, "out.txt")); string(data) != "made\n" {
		t.Errorf("workspace after delete: out.txt = %q", data)
	}
	assertNoSandboxLeftovers(t, r, id, b.Dir)
	r.Fail([]string{id, "does not exist"}, "exec", id, "true")
}

// TestSandboxTTL: the held init exits at the deadline without any command
// running, and the next list removes the expired sandbox, writing back.
func TestSandboxTTL(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	ws := userWorkspace(t)
	id := "sl-ttl"
	r.OK("sandbox", "--detach", "--id", id, "--ttl", "5s", "--bundle", b.Dir, "--workspace", ws+":copy-in-out")
	r.OK("exec", id, "sh", "-c", "echo kept > kept.txt")
	// The attack: code in the sandbox tries to stop or kill the held init
	// (so the TTL never fires) and leaves a process meant to outlive it.
	r.Run(nil, "exec", id, "sh", "-c", "kill -STOP 1; kill -KILL 1; true")
	if st := r.State(id); st["status"] != "running" {
		t.Fatalf("the sandbox's own code stopped its held init: %v", st["status"])
	}
	r.OK("exec", "-d", id, "sh", "-c", "setsid sleep 1000")
	waitForUpTo(t, 20*time.Second, "the sandbox's init to exit at its TTL", func() bool {
		return r.State(id)["status"] == "stopped"
	})
	time.Sleep(500 * time.Millisecond)
	if out := r.OK("list", "-q").Stdout; strings.Contains(out, id) {
		t.Errorf("expired sandbox still listed:\n%s", out)
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "kept.txt")); string(data) != "kept\n" {
		t.Errorf("expired sandbox's workspace not written back: %q", data)
	}
	assertNoSandboxLeftovers(t, r, id, b.Dir)
}

// TestSandboxGc: gc removes a detached sandbox whose own command ended
// and keeps a running one.
func TestSandboxGc(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	r.OK("sandbox", "--detach", "--id", "sl-gc-done", "--bundle", b.Dir, "--", "sh", "-c", "echo ran")
	r.OK("sandbox", "--detach", "--id", "sl-gc-live", "--bundle", b.Dir)
	defer r.Run(nil, "delete", "sl-gc-live")
	r.WaitStatus("sl-gc-done", "stopped")
	if log, _ := os.ReadFile(filepath.Join(r.Root, "@sandbox-sl-gc-done", "init.log")); string(log) != "ran\n" {
		t.Errorf("the detached command's output: %q", log)
	}
	if out := r.OK("gc").Stdout; out != "sl-gc-done\n" {
		t.Errorf("gc removed %q, want sl-gc-done", out)
	}
	assertNoSandboxLeftovers(t, r, "sl-gc-done", b.Dir)
	if st := r.State("sl-gc-live"); st["status"] != "running" {
		t.Errorf("gc touched a running sandbox: %v", st["status"])
	}
}

// TestSandboxDetachRefusals: bad combinations fail with one line and leave
// nothing behind.
func TestSandboxDetachRefusals(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	r.Fail([]string{"--ttl", "--detach"}, "sandbox", "--ttl", "1m", "--bundle", b.Dir, "--", "true")
	r.Fail([]string{"--json"}, "sandbox", "--detach", "--json", "--bundle", b.Dir)
	r.Fail([]string{"--tty"}, "sandbox", "--detach", "--tty", "--id", "sl-ref-tty", "--bundle", b.Dir)
	r.Fail([]string{"--timeout", "--ttl"}, "sandbox", "--detach", "--timeout", "1s", "--id", "sl-ref-to", "--bundle", b.Dir)
	r.Fail([]string{"gvisor", "command"}, "sandbox", "--detach", "--engine", "gvisor", "--id", "sl-ref-gv", "--bundle", b.Dir)
	r.OK("sandbox", "--detach", "--id", "sl-ref-dup", "--bundle", b.Dir)
	r.Fail([]string{"sl-ref-dup", "already exists"}, "sandbox", "--detach", "--id", "sl-ref-dup", "--bundle", b.Dir)
	if st := r.State("sl-ref-dup"); st["status"] != "running" {
		t.Errorf("a refused duplicate changed the first sandbox: %v", st["status"])
	}
	r.OK("delete", "sl-ref-dup")
	for _, id := range []string{"sl-ref-tty", "sl-ref-to", "sl-ref-gv", "sl-ref-dup"} {
		assertNoSandboxLeftovers(t, r, id, b.Dir)
	}
	r.Fail([]string{"sl-ref-none", "does not exist"}, "delete", "sl-ref-none")
}

// TestSandboxProcessFlags: --env, --env-file, --cwd, --user, -i and
// --json, as podman's run takes them.
func TestSandboxProcessFlags(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	envFile := filepath.Join(t.TempDir(), "env")
	os.WriteFile(envFile, []byte("# a comment\nFROM_FILE=file value\n\nSHARED=from file\n"), 0o644)
	t.Setenv("PASSED_THROUGH", "from nucleus")
	res := r.Run([]byte("ignored stdin\n"), "sandbox", "--bundle", b.Dir, "--env-file", envFile, "--env", "SHARED=from flag",
		"--env", "PASSED_THROUGH", "--env", "LIST=a,b", "--cwd", "/tmp", "--user", "1000:1001", "--",
		"sh", "-c", `echo "$FROM_FILE|$SHARED|$PASSED_THROUGH|$LIST"; pwd; id -u; id -g; cat; echo "stdin done"`)
	want := "file value|from flag|from nucleus|a,b\n/tmp\n1000\n1001\nstdin done\n"
	if res.Code != 0 || res.Stdout != want {
		t.Errorf("sandbox with process flags: exit %d\n got %q\nwant %q\nstderr: %s", res.Code, res.Stdout, want, res.Stderr)
	}
	res = r.Run([]byte("kept open\n"), "sandbox", "-i", "--bundle", b.Dir, "--", "cat")
	if res.Stdout != "kept open\n" {
		t.Errorf("sandbox -i: stdout %q, stderr %s", res.Stdout, res.Stderr)
	}
	res = r.Run(nil, "sandbox", "--json", "--bundle", b.Dir, "--", "sh", "-c", "printf partial; exit 3")
	lines := strings.Split(strings.TrimRight(res.Stdout, "\n"), "\n")
	if res.Code != 3 || len(lines) != 2 || lines[0] != "partial" {
		t.Fatalf("sandbox --json: exit %d, stdout %q", res.Code, res.Stdout)
	}
	var result struct {
		ID         string `json:"id"`
		ExitCode   int    `json:"exit_code"`
		Reason     string `json:"reason"`
		DurationMS *int64 `json:"duration_ms"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &result); err != nil || result.ExitCode != 3 || result.Reason != "exited" || result.DurationMS == nil || !strings.HasPrefix(result.ID, "sbx-") {
		t.Errorf("--json result %q: %+v %v", lines[1], result, err)
	}
	res = r.Run(nil, "sandbox", "--json", "--timeout", "1s", "--bundle", b.Dir, "--", "sleep", "10")
	if res.Code != 124 || !strings.Contains(res.Stdout, `"reason":"timeout"`) {
		t.Errorf("--json after --timeout: exit %d, %q", res.Code, res.Stdout)
	}
	r.Fail([]string{"--env-file", "line 1"}, "sandbox", "--bundle", b.Dir, "--env-file", writeTemp(t, "=novalue\n"), "--", "true")
	r.Fail([]string{"--cwd", "absolute"}, "sandbox", "--bundle", b.Dir, "--cwd", "rel", "--", "true")
}

func writeTemp(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSandboxWorkspaces: several workspaces, each at its destination,
// each written back; overlapping destinations are refused.
func TestSandboxWorkspaces(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	a, c, ro := userWorkspace(t), userWorkspace(t), userWorkspace(t)
	os.WriteFile(filepath.Join(ro, "readme"), []byte("read me\n"), 0o644)
	chownTree(t, ro, 1000, 1000)
	res := r.Run(nil, "sandbox", "--id", "sl-ws", "--bundle", b.Dir, "--workspace", a+":copy-in-out", "--workspace", c+":/data:copy-in-out",
		"--workspace", ro+":/ref:bind-ro", "--", "sh", "-c", "pwd; echo A > /workspace/a; echo C > /data/c; cat /ref/readme; echo x > /ref/no 2>/dev/null || echo ro")
	if res.Code != 0 || res.Stdout != "/workspace\nread me\nro\n" {
		t.Errorf("three workspaces: exit %d, %q, %s", res.Code, res.Stdout, res.Stderr)
	}
	if d, _ := os.ReadFile(filepath.Join(a, "a")); string(d) != "A\n" {
		t.Errorf("first workspace: %q", d)
	}
	if d, _ := os.ReadFile(filepath.Join(c, "c")); string(d) != "C\n" {
		t.Errorf("second workspace: %q", d)
	}
	assertNoSandboxLeftovers(t, r, "sl-ws", b.Dir)
	r.Fail([]string{"--workspace", "overlap"}, "sandbox", "--id", "sl-ws2", "--bundle", b.Dir, "--workspace", a+":copy-in-out", "--workspace", c+":/workspace/sub", "--", "true")
	assertNoSandboxLeftovers(t, r, "sl-ws2", b.Dir)
}

// TestSandboxBundleUntouched: a sandbox, in a mode or none, creates no
// mount point (or anything else) in the bundle it runs.
func TestSandboxBundleUntouched(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	for _, d := range []string{"proc", "sys", "dev", "tmp"} {
		os.Remove(filepath.Join(b.Rootfs, d))
	}
	ws := userWorkspace(t)
	list := func() string {
		var names []string
		filepath.Walk(b.Dir, func(p string, _ os.FileInfo, err error) error {
			names = append(names, p)
			return nil
		})
		return strings.Join(names, "\n")
	}
	before := list()
	for _, mode := range []string{"agent", ""} {
		res := r.Run(nil, "sandbox", "--mode", mode, "--bundle", b.Dir, "--workspace", ws+":/data:bind-ro", "--", "ls", "/data")
		if res.Code != 0 {
			t.Fatalf("sandbox --mode %q: exit %d: %s", mode, res.Code, res.Stderr)
		}
		if after := list(); after != before {
			t.Errorf("sandbox --mode %q changed its bundle:\nbefore:\n%s\nafter:\n%s", mode, before, after)
		}
	}
}

// TestSandboxTty: -t gives the command a real pseudo-terminal of the
// caller's size.
func TestSandboxTty(t *testing.T) {
	script := requireCmd(t, "script")
	r := newRunner(t)
	b := newBundle(t)
	inner := fmt.Sprintf("stty rows 33 cols 77; %s --root %s sandbox -t --bundle %s -- sh -c 'tty; stty size'", r.Bin, r.Root, b.Dir)
	out, err := exec.Command(script, "-qec", inner, "/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v: %s", err, out)
	}
	got := strings.ReplaceAll(string(out), "\r", "")
	for _, want := range []string{"/dev/pts/", "33 77"} {
		if !strings.Contains(got, want) {
			t.Errorf("sandbox -t output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "not a tty") {
		t.Errorf("sandbox -t gave no terminal:\n%s", got)
	}
}

// TestSandboxWorkspaceCopyBounded: while a sandbox runs, its copy-in-out
// copy can't grow past --workspace-max-bytes (a tmpfs of that size), so a
// state root on the host's disk can't be filled through it; nor by a
// long-lived sandbox.
func TestSandboxWorkspaceCopyBounded(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	ws := userWorkspace(t)
	fill := "dd if=/dev/zero of=/workspace/big bs=1M count=96 2>/dev/null && echo wrote || echo refused"
	res := r.Run(nil, "sandbox", "--id", "sl-fill", "--bundle", b.Dir, "--workspace", ws+":copy-in-out", "--workspace-max-bytes", "32M", "--", "sh", "-c", fill)
	if !strings.Contains(res.Stdout, "refused") {
		t.Errorf("a 96M write into a 32M copy-in-out workspace: %q (exit %d, %s)", res.Stdout, res.Code, res.Stderr)
	}
	assertNoSandboxLeftovers(t, r, "sl-fill", b.Dir)
	r.OK("sandbox", "--detach", "--id", "sl-fill2", "--bundle", b.Dir, "--workspace", ws+":copy-in-out", "--workspace-max-bytes", "32M")
	if out := r.OK("exec", "sl-fill2", "sh", "-c", fill).Stdout; !strings.Contains(out, "refused") {
		t.Errorf("a 96M write into a long-lived sandbox's 32M copy: %q", out)
	}
	r.OK("exec", "sl-fill2", "sh", "-c", "rm -f /workspace/big; echo small > /workspace/small")
	r.OK("delete", "sl-fill2")
	if d, _ := os.ReadFile(filepath.Join(ws, "small")); string(d) != "small\n" {
		t.Errorf("write-back after the bounded copy: %q", d)
	}
	assertNoSandboxLeftovers(t, r, "sl-fill2", b.Dir)
}

package integration

// exec into a gVisor container started in an isolation mode: the exec'd
// process must get the container's confinement, as on the native engine
// (TestPolicyExecConfined). Ids are prefixed gs-.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGvisorExecConfined(t *testing.T) {
	r := gvisorRunner(t)
	b := probeBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Save(t)
	id := "gs-gv-exec"
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	r.coreDetached("create", "--mode", "agent", "--audit-log", audit, "--bundle", b.Dir, id)
	t.Cleanup(func() { r.Run(nil, "delete", "--force", id) })
	r.coreDetached("start", id)
	exec := func(args ...string) Result {
		t.Helper()
		res, err := r.coreExec(nil, append([]string{"exec"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// The filter, no capabilities, no_new_privs.
	res := exec(id, "probe", "status")
	for _, want := range []string{"Seccomp: 2", "CapEff: 0000000000000000", "CapBnd: 0000000000000000"} {
		expectLine(t, res, want)
	}
	expectLine(t, exec(id, "probe", "nnp"), "NoNewPrivs: 1")
	// What the filter refuses: a user namespace (gVisor alone allows
	// it), keyctl (gVisor alone says EACCES), an SCTP socket.
	expectLine(t, exec(id, "probe", "unshare"), "DENIED EPERM")
	expectLine(t, exec(id, "probe", "keyctl"), "DENIED EPERM")
	expectLine(t, exec(id, "sh", "-c", "unshare -U true && echo UNSHARED || echo refused"), "refused")
	// The same through --process, which names its own capabilities.
	proc := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(proc, []byte(`{"args":["probe","status"],"cwd":"/","user":{"uid":0,"gid":0},
		"capabilities":{"bounding":["CAP_SYS_ADMIN"],"effective":["CAP_SYS_ADMIN"],"permitted":["CAP_SYS_ADMIN"]}}`), 0o644)
	res = exec("--process", proc, id)
	for _, want := range []string{"Seccomp: 2", "CapEff: 0000000000000000"} {
		expectLine(t, res, want)
	}
	// Still an ordinary process: exit codes, env, cwd, user.
	res = exec("--user", "65534:65534", "--cwd", "/tmp", "--env", "FOO=bar", id, "sh", "-c", "echo $(id -u) $(pwd) $FOO; exit 3")
	if res.Code != 3 || strings.TrimSpace(res.Stdout) != "65534 /tmp bar" {
		t.Errorf("exec overrides: exit %d stdout %q stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	if res := exec(id, "no-such-command"); res.Code == 0 {
		t.Errorf("exec of a missing command: exit 0, stderr %q", res.Stderr)
	}
	// --cap is refused, as on the native engine.
	res = exec("--cap", "CAP_SYS_ADMIN", id, "true")
	if res.Code == 0 || !strings.Contains(res.Stderr, "agent mode") || strings.Count(strings.TrimSpace(res.Stderr), "\n") > 0 {
		t.Errorf("exec --cap into an agent gVisor container: exit %d, stderr %q; want a one-line refusal", res.Code, res.Stderr)
	}
	data, _ := os.ReadFile(audit)
	if !strings.Contains(string(data), `"exec"`) {
		t.Errorf("audit log does not say how exec'd processes are confined:\n%s", data)
	}
	r.OK("delete", "--force", id)
	assertNoGvisorLeftovers(t, r, id, b.Dir)
}

// TestGvisorExecHelperNotPoisonable: the confinement helper and its filter
// sat in a 0777 directory of gVisor's /dev that the sandbox could rename
// away and rebuild, with an allow-all filter, so the platform's next
// `nucleus exec` ran unfiltered (found by a red-team run).
func TestGvisorExecHelperNotPoisonable(t *testing.T) {
	r := gvisorRunner(t)
	b := probeBundle(t)
	// The container's own command plants the fake helper directory; the
	// allow-all program is "ret SECCOMP_RET_ALLOW".
	b.Spec.Process.Args = []string{"sh", "-c", `mv /dev/.nucleus /dev/.o; mkdir -p /dev/.nucleus; ` +
		`ln -s /dev/.o/nucleus /dev/.nucleus/nucleus; printf '\006\000\000\000\000\000\377\177' > /dev/.nucleus/seccomp.bpf; ` +
		`printf '\006\000\000\000\000\000\377\177' > /dev/.o/seccomp.bpf; echo planted; exec sleep 60`}
	b.Save(t)
	id := "gs-gv-poison"
	r.coreDetached("run", "-d", "--mode", "agent", "--bundle", b.Dir, id)
	t.Cleanup(func() { r.Run(nil, "delete", "--force", id) })
	// Give the planting command its moment: wait until it sleeps.
	waitFor(t, "the planting command to sleep", func() bool {
		res, _ := r.coreExec(nil, "exec", id, "sh", "-c", "pidof sleep")
		return res.Code == 0
	})
	res, err := r.coreExec(nil, "exec", id, "probe", "unshare")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Stdout, "DENIED EPERM") {
		t.Errorf("exec after the sandbox tampered with the helper dir: unshare %q (stderr %q), want DENIED EPERM or a refused exec", res.Stdout, res.Stderr)
	}
	r.OK("delete", "--force", id)
	assertNoGvisorLeftovers(t, r, id, b.Dir)
}

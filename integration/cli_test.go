package integration

// The command line as written: flags anywhere for nucleus's own commands
// (runc's keep runc's parsing), one-line usage errors, `version`, typo
// suggestions, paths relative to the caller, policy check's kinds, how the
// words after -- combine with an entrypoint, and --net host in agent mode.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCLIFlagsAnywhere: a nucleus command takes its flags after its
// arguments; what follows -- is the command's even when it looks like a
// flag; runc's exec keeps everything after the id as the command.
func TestCLIFlagsAnywhere(t *testing.T) {
	r := newRunner(t)
	dir := t.TempDir()
	prof := filepath.Join(dir, "p.json")
	body := `{"defaultAction":"SCMP_ACT_ERRNO"}`
	os.WriteFile(prof, []byte(body), 0o644)
	sum := sha256.Sum256([]byte(body))
	res := r.OK("policy", "check", prof, "--sha256", hex.EncodeToString(sum[:]), "--kind", "seccomp")
	if !strings.Contains(res.Stdout, "seccomp profile") {
		t.Errorf("policy check FILE --flags: %q", res.Stdout)
	}
	r.Fail([]string{"sha256 mismatch"}, "policy", "check", prof, "--sha256", strings.Repeat("0", 64))

	b := newBundle(t, "true")
	res = r.Run(nil, "sandbox", "--id", "cl-fa1", "--", "sh", "-c", `echo "args:$*"`, "x", "--bundle", "/nope", "-o")
	if res.Code == 0 {
		t.Fatalf("sandbox without --bundle (the one after -- is the command's) succeeded: %q", res.Stdout)
	}
	res = r.Run(nil, "sandbox", "--id", "cl-fa1", "--bundle", b.Dir, "--", "sh", "-c", `echo "args:$*"`, "x", "--bundle", "/nope", "-o")
	if res.Code != 0 || strings.TrimSpace(res.Stdout) != "args:--bundle /nope -o" {
		t.Errorf("sandbox -- CMD --bundle y: exit %d stdout %q stderr %q; want the words after -- kept as the command's", res.Code, res.Stdout, res.Stderr)
	}
	assertNoLeftovers(t, r.Root, "cl-fa1", b.Dir)

	// policy generate TRACE -o FILE (flag after the argument).
	trace := filepath.Join(dir, "t.json")
	os.WriteFile(trace, []byte(`{"command":["true"],"status":0,"syscalls":["read","write","exit_group"]}`), 0o644)
	out := filepath.Join(dir, "gen.json")
	r.OK("policy", "generate", trace, "-o", out)
	if _, err := os.Stat(out); err != nil {
		t.Errorf("policy generate TRACE -o FILE wrote no file: %v", err)
	}

	// export BUNDLE -o DIR --mode agent: both flags after the argument.
	exp := filepath.Join(dir, "exported")
	res = r.OK("export", b.Dir, "-o", exp, "--mode", "agent")
	if !strings.Contains(res.Stdout, "--bundle "+exp) {
		t.Errorf("export BUNDLE -o DIR: stdout %q", res.Stdout)
	}
	if _, err := os.Stat(filepath.Join(exp, "config.json")); err != nil {
		t.Errorf("export BUNDLE -o DIR wrote no config.json: %v", err)
	}
	// --help anywhere is the command's help, not help on a subcommand
	// named by the argument.
	if res := r.OK("export", b.Dir, "--help"); !strings.Contains(res.Stdout, "nucleus export") {
		t.Errorf("export BUNDLE --help: %q", res.Stdout)
	}

	// runc's exec: short aliases before the id, and every word after the
	// id (flag-like or not) is the command's.
	lb := newBundle(t, "sleep", "60")
	id := coreID(t, r, "cl-fa-exec")
	r.OK("create", "--bundle", lb.Dir, id)
	r.OK("start", id)
	res = r.OK("exec", "-e", "A=1", "--env", "B=2", id, "sh", "-c", `echo "$A$B:$*"`, "x", "--env", "C=3", "-t")
	if strings.TrimSpace(res.Stdout) != "12:--env C=3 -t" {
		t.Errorf("exec -e A=1 --env B=2 ID sh -c ... --env C=3 -t: stdout %q; want the flags after the id passed to the command", res.Stdout)
	}
	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, lb.Dir)
}

// TestCLIUsageErrors: one line naming the command and a hint, non-zero,
// nothing on stdout; never urfave/cli's page of help.
func TestCLIUsageErrors(t *testing.T) {
	r := newRunner(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "-x"}, "nucleus: export: flag provided but not defined: -x (see nucleus export --help)"},
		{[]string{"export", "somebundle"}, "nucleus: export: --output is required (see nucleus export --help)"},
		{[]string{"policy", "check"}, `"policy check" requires exactly 1 argument(s), got 0`},
		{[]string{"policy", "check", "a", "b"}, `"policy check" requires exactly 1 argument(s), got 2`},
		{[]string{"policy", "show", "--mode"}, "nucleus: policy show: flag needs an argument: --mode (see nucleus policy show --help)"},
		{[]string{"sandbox", "--bogus", "--", "true"}, "nucleus: sandbox: flag provided but not defined: --bogus (see nucleus sandbox --help)"},
		{[]string{"bundle", "a", "b", "-o", "/nonexistent-out"}, "nucleus: bundle: requires exactly 1 argument FLAKEREF#ATTR, got 2 (see nucleus bundle --help)"},
		{[]string{"state"}, `"state" requires exactly 1 argument(s), got 0`},
		{[]string{"kill", "--nope", "x"}, "nucleus: kill: flag provided but not defined: --nope (see nucleus kill --help)"},
		{[]string{"--bogus", "list"}, "nucleus: flag provided but not defined: --bogus (see nucleus --help)"},
	} {
		res := r.Fail([]string{tc.want}, tc.args...)
		if res.Stdout != "" || strings.Contains(res.Stderr, "USAGE") {
			t.Errorf("nucleus %v printed help: stdout %q stderr %q", tc.args, res.Stdout, res.Stderr)
		}
	}
}

// TestCLIVersionAndTypos: `version` prints what --version prints; a
// mistyped command names the nearest one.
func TestCLIVersionAndTypos(t *testing.T) {
	r := newRunner(t)
	v := r.OK("version")
	flag := r.OK("--version")
	if v.Stdout != flag.Stdout || !strings.HasPrefix(v.Stdout, "nucleus version ") {
		t.Errorf("version printed %q, --version %q", v.Stdout, flag.Stdout)
	}
	r.Fail([]string{`nucleus: unknown command "sandbx" (did you mean "sandbox"?)`}, "sandbx", "--", "true")
	r.Fail([]string{`nucleus: unknown command "versoin" (did you mean "version"?)`}, "versoin")
	r.Fail([]string{`unknown policy command "chek" (did you mean "check"?)`}, "policy", "chek", "f")
	r.Fail([]string{`unknown command "zzzzzzzz" (see nucleus --help)`}, "zzzzzzzz")
}

// TestCLIPolicyTraceOutputRelative: -o FILE is the caller's path, not the
// bundle's.
func TestCLIPolicyTraceOutputRelative(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "true")
	cwd := t.TempDir()
	cmd := r.Cmd("policy", "trace", "-o", "trace.json", "--", "true", "--bundle", b.Dir)
	cmd.Dir = cwd
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("policy trace with --bundle after -- (the command's) succeeded: %s", out)
	}
	// Both paths relative to the caller, flags after -o's value.
	rel, err := filepath.Rel(cwd, b.Dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd = r.Cmd("policy", "trace", "-o", "trace.json", "--bundle", rel, "--", "true")
	cmd.Dir = cwd
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("policy trace -o trace.json from %s: %v: %s", cwd, err, out)
	}
	data, err := os.ReadFile(filepath.Join(cwd, "trace.json"))
	if err != nil {
		t.Fatalf("trace not written relative to the caller's cwd: %v", err)
	}
	var tr struct{ Syscalls []string }
	if err := json.Unmarshal(data, &tr); err != nil || len(tr.Syscalls) == 0 {
		t.Errorf("trace %s: %v %q", data, err, tr.Syscalls)
	}
	for _, p := range []string{filepath.Join(b.Dir, "trace.json"), filepath.Join(b.Rootfs, "trace.json")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("trace also written at %s", p)
		}
	}
}

// TestCLIPolicyCheckKinds: Landlock policies, seccomp profiles and caps
// policies are all checked, by their fields or --kind.
func TestCLIPolicyCheckKinds(t *testing.T) {
	r := newRunner(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	ll := write("ll.json", `{"read":["/data"],"write":["/out"],"exec":["/opt/bin"],"no_exec_root":["/srv"]}`)
	res := r.OK("policy", "check", ll)
	if !strings.Contains(res.Stdout, "Landlock policy") || !strings.Contains(res.Stdout, "/srv") {
		t.Errorf("landlock policy: %q", res.Stdout)
	}
	r.OK("policy", "check", "--kind", "landlock", ll)
	caps := write("caps.json", `{"keep":["CAP_NET_BIND_SERVICE"]}`)
	if res := r.OK("policy", "check", caps); !strings.Contains(res.Stdout, "capability policy") {
		t.Errorf("caps policy: %q", res.Stdout)
	}
	sc := write("sc.json", `{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`)
	if res := r.OK("policy", "check", sc); !strings.Contains(res.Stdout, "seccomp profile") {
		t.Errorf("seccomp profile: %q", res.Stdout)
	}
	bad := write("bad.json", `{"no_exec_root":["/srv/x"]}`)
	r.Fail([]string{bad, "no_exec_root[0]", `"/srv/x"`}, "policy", "check", bad)
	r.Fail([]string{"relative", "read[0]"}, "policy", "check", write("rel.json", `{"read":["relative"]}`))
	r.Fail([]string{"caps (keep) and landlock (read)", "--kind"}, "policy", "check", write("mixed.json", `{"keep":[],"read":[]}`))
	r.Fail([]string{"not a capability policy", `"read"`}, "policy", "check", "--kind", "caps", ll)
	r.Fail([]string{`--kind "nope"`}, "policy", "check", "--kind", "nope", ll)
}

// TestCLIEntrypointArgs: sandbox's words after -- replace process.args;
// with --entrypoint they follow it, as bundle --entrypoint writes them.
func TestCLIEntrypointArgs(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "echo", "from-config")
	if res := r.sandbox(b, "cl-ep1", nil); strings.TrimSpace(res.Stdout) != "from-config" {
		t.Errorf("sandbox without a command: %q %q", res.Stdout, res.Stderr)
	}
	if res := r.sandbox(b, "cl-ep2", nil, "echo", "replaced"); strings.TrimSpace(res.Stdout) != "replaced" {
		t.Errorf("sandbox -- CMD: %q %q; want process.args replaced", res.Stdout, res.Stderr)
	}
	if res := r.sandbox(b, "cl-ep3", []string{"--entrypoint", "/bin/echo"}, "a", "b"); strings.TrimSpace(res.Stdout) != "a b" {
		t.Errorf("sandbox --entrypoint /bin/echo -- a b: %q %q", res.Stdout, res.Stderr)
	}
}

// TestCLINetHostAgent: a user namespace cannot mount sysfs on the host's
// network namespace; agent mode's --net host says so in one line, before
// anything is created.
func TestCLINetHostAgent(t *testing.T) {
	r := newRunner(t)
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		need(t, false, "needs user namespaces")
	}
	b := newBundle(t, "true")
	want := []string{"--net: host is refused in agent mode", "cannot mount sysfs", "network namespace of its own", "drop the bundle's sysfs mount"}
	res := r.Fail(want, "sandbox", "--net", "host", "--bundle", b.Dir, "--id", "cl-nh1", "--", "true")
	if strings.Contains(res.Stderr, "error mounting") {
		t.Errorf("raw mount error: %s", res.Stderr)
	}
	assertNoLeftovers(t, r.Root, "cl-nh1", b.Dir)
	r.Fail(want, "run", "--mode", "agent", "--net", "host", "--bundle", b.Dir, "cl-nh2")
	assertNoLeftovers(t, r.Root, "cl-nh2", b.Dir)

	// A bundle without a sysfs mount gets the host's network namespace.
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var mounts []specs.Mount
	for _, m := range b.Spec.Mounts {
		if m.Type != "sysfs" {
			mounts = append(mounts, m)
		}
	}
	b.Spec.Mounts = mounts
	b.Save(t)
	res = r.sandbox(b, "cl-nh3", []string{"--net", "host"}, "readlink", "/proc/self/ns/net")
	if res.Code != 0 || strings.TrimSpace(res.Stdout) != host {
		t.Errorf("agent --net host without /sys: exit %d stdout %q stderr %q; want the host's %s", res.Code, res.Stdout, res.Stderr, host)
	}
	res = r.Run(nil, "run", "--mode", "agent", "--net", "host", "--bundle", b.Dir, "cl-nh4")
	if res.Code != 0 {
		t.Errorf("run --mode agent --net host without /sys: exit %d stderr %q", res.Code, res.Stderr)
	}
	assertNoLeftovers(t, r.Root, "cl-nh4", b.Dir)
}

// TestCLIBundleAndSandboxArgsAgree: bundle --entrypoint PROG -- ARGS and
// sandbox --entrypoint PROG -- ARGS both run PROG ARGS; sandbox -- CMD
// replaces the bundle's whole command.
func TestCLIBundleAndSandboxArgsAgree(t *testing.T) {
	r, cache := nixEnv(t)
	flake := nixFlakeCopy(t)
	dir, _ := nixBundle(t, r, cache, flake+"#agent-example", "--entrypoint", "bin/echo", "--", "from", "bundle")
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Process struct{ Args []string } }
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	args := s.Process.Args
	if len(args) != 3 || !strings.HasSuffix(args[0], "/bin/echo") || args[1] != "from" || args[2] != "bundle" {
		t.Fatalf("bundle --entrypoint bin/echo -- from bundle wrote process.args %q; want the entrypoint, then the args", args)
	}
	b := &Bundle{Dir: dir}
	if res := r.sandbox(b, "cl-agree1", nil); strings.TrimSpace(res.Stdout) != "from bundle" {
		t.Errorf("sandbox of the bundle: %q %q", res.Stdout, res.Stderr)
	}
	if res := r.sandbox(b, "cl-agree2", []string{"--entrypoint", args[0]}, "from", "sandbox"); strings.TrimSpace(res.Stdout) != "from sandbox" {
		t.Errorf("sandbox --entrypoint ECHO -- from sandbox: %q %q", res.Stdout, res.Stderr)
	}
	if res := r.sandbox(b, "cl-agree3", nil, args[0], "replaced"); strings.TrimSpace(res.Stdout) != "replaced" {
		t.Errorf("sandbox -- ECHO replaced: %q %q; want the bundle's command replaced", res.Stdout, res.Stderr)
	}
}

package integration

// spec, features, --version, and concurrent callers.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCoreSpecRuns: `nucleus spec` writes a config that `run` accepts as
// is; its process is an interactive sh on a terminal, so run it on a pty.
func TestCoreSpecRuns(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "true")
	os.Remove(filepath.Join(b.Dir, "config.json"))
	r.OK("spec", "--bundle", b.Dir)
	data, err := os.ReadFile(filepath.Join(b.Dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("spec wrote invalid JSON: %v", err)
	}
	if s.Version != specs.Version || s.Root.Path != "rootfs" || !s.Process.Terminal || len(s.Process.Args) == 0 {
		t.Errorf("spec wrote ociVersion %q root %v terminal %v args %v", s.Version, s.Root, s.Process.Terminal, s.Process.Args)
	}

	// spec refuses to overwrite, and leaves the file as it was.
	os.WriteFile(filepath.Join(b.Dir, "config.json"), append(data, ' '), 0o644)
	r.Fail([]string{filepath.Join(b.Dir, "config.json") + " already exists"}, "spec", "--bundle", b.Dir)
	if now, _ := os.ReadFile(filepath.Join(b.Dir, "config.json")); string(now) != string(data)+" " {
		t.Errorf("spec overwrote config.json")
	}

	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatalf("open a pty: %v", err)
	}
	defer master.Close()
	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := coreID(t, r, "spec")
	cmd := r.Cmd("run", "--bundle", b.Dir, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out syncBuffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&out, master); close(copied) }()
	if _, err := master.Write([]byte("echo tty-$((6*7)); test -t 0 && echo stdin-is-a-tty; exit 5\n")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("run of the spec config still running after 60s; output %q", out.String())
	}
	master.Close()
	<-copied
	if code := cmd.ProcessState.ExitCode(); code != 5 {
		t.Errorf("run of the spec config: exit %d, want 5; output %q", code, out.String())
	}
	if o := out.String(); !strings.Contains(o, "tty-42") || !strings.Contains(o, "stdin-is-a-tty") {
		t.Errorf("run of the spec config: output %q", o)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)

	// --rootless writes a config with a user namespace and mappings.
	dir := t.TempDir()
	r.OK("spec", "--rootless", "-b", dir)
	data, _ = os.ReadFile(filepath.Join(dir, "config.json"))
	var rs specs.Spec
	if err := json.Unmarshal(data, &rs); err != nil || len(rs.Linux.UIDMappings) == 0 ||
		!slices.ContainsFunc(rs.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }) {
		t.Errorf("spec --rootless: %v, %s", err, data)
	}
	r.Fail([]string{"no such file or directory"}, "spec", "--bundle", filepath.Join(dir, "missing"))
}

// TestCoreAttachedTerminalWithoutTTY: a terminal config run attached with
// no terminal to attach to is a clear error that leaves nothing behind.
func TestCoreAttachedTerminalWithoutTTY(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh")
	b.Spec.Process.Terminal = true
	b.Save(t)
	id := coreID(t, r, "notty")
	cmd := r.Cmd("run", "--bundle", b.Dir, id)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal
	errF, _ := os.CreateTemp(t.TempDir(), "stderr")
	cmd.Stderr = errF
	err := cmd.Run()
	msg, _ := os.ReadFile(errF.Name())
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(msg), "no terminal to attach to") {
		t.Errorf("run of a terminal config without a tty: %v, %q", err, msg)
	}
	r.Fail([]string{"process.terminal is true but nucleus detaches", "--console-socket"}, "create", "--bundle", b.Dir, id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

func TestCoreFeatures(t *testing.T) {
	r := newRunner(t)
	res := r.OK("features")
	var f struct {
		OCIVersionMin string            `json:"ociVersionMin"`
		OCIVersionMax string            `json:"ociVersionMax"`
		Hooks         []string          `json:"hooks"`
		MountOptions  []string          `json:"mountOptions"`
		Annotations   map[string]string `json:"annotations"`
		Linux         struct {
			Namespaces   []string `json:"namespaces"`
			Capabilities []string `json:"capabilities"`
			Cgroup       struct {
				V1 *bool `json:"v1"`
				V2 *bool `json:"v2"`
			} `json:"cgroup"`
			Seccomp struct {
				Enabled *bool    `json:"enabled"`
				Actions []string `json:"actions"`
				Archs   []string `json:"archs"`
			} `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &f); err != nil {
		t.Fatalf("features is not JSON: %v: %q", err, res.Stdout)
	}
	if f.OCIVersionMin != "1.0.0" || f.OCIVersionMax != specs.Version {
		t.Errorf("features versions %q..%q", f.OCIVersionMin, f.OCIVersionMax)
	}
	if f.Linux.Seccomp.Enabled == nil || !*f.Linux.Seccomp.Enabled ||
		!slices.Contains(f.Linux.Seccomp.Actions, "SCMP_ACT_ERRNO") || !slices.Contains(f.Linux.Seccomp.Archs, "SCMP_ARCH_X86_64") {
		t.Errorf("features: seccomp not enabled in a seccomp build: %+v", f.Linux.Seccomp)
	}
	if f.Annotations["io.github.seccomp.libseccomp.version"] == "" {
		t.Errorf("features: no libseccomp version annotation: %v", f.Annotations)
	}
	for _, ns := range []string{"pid", "network", "mount", "ipc", "uts", "user", "cgroup"} {
		if !slices.Contains(f.Linux.Namespaces, ns) {
			t.Errorf("features: namespace %s missing: %v", ns, f.Linux.Namespaces)
		}
	}
	if !slices.Contains(f.Linux.Capabilities, "CAP_SYS_ADMIN") || !slices.Contains(f.MountOptions, "nosuid") ||
		!slices.Contains(f.Hooks, "prestart") || f.Linux.Cgroup.V1 == nil || f.Linux.Cgroup.V2 == nil {
		t.Errorf("features: incomplete: %s", res.Stdout)
	}
	r.Fail([]string{`"features" requires exactly 0 argument(s)`}, "features", "extra")
}

func TestCoreVersion(t *testing.T) {
	r := newRunner(t)
	for _, flag := range []string{"--version", "-v"} {
		res := r.OK(flag)
		lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
		if !regexp.MustCompile(`^nucleus version \S+$`).MatchString(lines[0]) {
			t.Errorf("%s: first line %q, want 'nucleus version X'", flag, lines[0])
		}
		if !slices.Contains(lines, "spec: "+specs.Version) {
			t.Errorf("%s: no 'spec: %s' line: %q", flag, specs.Version, res.Stdout)
		}
		for _, l := range lines[1:] {
			if !regexp.MustCompile(`^(commit|spec|go|libseccomp): \S+$`).MatchString(l) {
				t.Errorf("%s: line %q is not in runc's 'key: value' format", flag, l)
			}
		}
	}
}

// TestCoreConcurrentLifecycles runs 20 create/start/delete cycles at once
// in one root; every one succeeds and nothing is left.
func TestCoreConcurrentLifecycles(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = coreID(t, r, fmt.Sprintf("conc%02d", i))
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- cycle(r, b, id)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if res := r.OK("list", "-q"); strings.TrimSpace(res.Stdout) != "" {
		t.Errorf("list -q after the cycles: %q", res.Stdout)
	}
	for _, id := range ids {
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
}

// cycle is one create → start → state → delete --force; it reports errors
// instead of failing, for use from goroutines.
func cycle(r *Runner, b *Bundle, id string) error {
	step := func(want string, args ...string) (Result, error) {
		res, err := r.coreExec(nil, args...)
		if err != nil {
			return res, err
		}
		if res.Code != 0 {
			return res, fmt.Errorf("%s: nucleus %s: exit %d: %s", id, strings.Join(args, " "), res.Code, res.Stderr)
		}
		if want != "" && !strings.Contains(res.Stdout, want) {
			return res, fmt.Errorf("%s: nucleus %s: output %q lacks %q", id, strings.Join(args, " "), res.Stdout, want)
		}
		return res, nil
	}
	for _, s := range [][]string{
		{"", "create", "--bundle", b.Dir, id},
		{`"status": "created"`, "state", id},
		{"", "start", id},
		{`"status": "running"`, "state", id},
		{"", "delete", "--force", id},
	} {
		if _, err := step(s[0], s[1:]...); err != nil {
			return err
		}
	}
	res, err := r.coreExec(nil, "state", id)
	if err == nil && res.Code == 0 {
		return fmt.Errorf("%s: state succeeds after delete: %s", id, res.Stdout)
	}
	return err
}

// TestCoreConcurrentDeletes: two forced deletes of one running container
// both succeed and leave nothing; so does a delete racing pause.
func TestCoreConcurrentDeletes(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "sleep 1000 & wait")
	for round := range 3 {
		id := coreID(t, r, fmt.Sprintf("twodel%d", round))
		r.coreDetached("run", "-d", "--bundle", b.Dir, id)
		waitFor(t, "two processes", func() bool { return len(r.corePs(id)) == 2 })
		pids := r.corePs(id)
		results := make([]Result, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = r.coreExec(nil, "delete", "--force", id)
			}()
		}
		wg.Wait()
		for i := range 2 {
			if errs[i] != nil || results[i].Code != 0 {
				t.Errorf("round %d: delete --force #%d: %v, exit %d, stderr %q", round, i, errs[i], results[i].Code, results[i].Stderr)
			}
		}
		for _, p := range pids {
			if alive(p) {
				t.Errorf("round %d: process %d alive after the deletes", round, p)
			}
		}
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}

	// delete --force racing pause: whichever wins, the container ends up gone.
	id := coreID(t, r, "delpause")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	var wg sync.WaitGroup
	var delRes Result
	var delErr error
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = r.coreExec(nil, "pause", id) }()
	go func() { defer wg.Done(); delRes, delErr = r.coreExec(nil, "delete", "--force", id) }()
	wg.Wait()
	if delErr != nil || delRes.Code != 0 {
		t.Errorf("delete --force racing pause: %v, exit %d, stderr %q", delErr, delRes.Code, delRes.Stderr)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestCoreConcurrentCreateSameID: of several creates of one id at once,
// exactly one wins; the others fail clearly and do not disturb it.
func TestCoreConcurrentCreateSameID(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	id := coreID(t, r, "race")
	const n = 5
	results := make([]Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = r.coreExec(nil, "create", "--bundle", b.Dir, id)
		}()
	}
	wg.Wait()
	wins := 0
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Errorf("create #%d: %v", i, errs[i])
		case results[i].Code == 0:
			wins++
		case !strings.Contains(results[i].Stderr, "container "+id+" already exists") || strings.Count(strings.TrimSpace(results[i].Stderr), "\n") != 0:
			t.Errorf("losing create #%d: stderr %q", i, results[i].Stderr)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent creates of one id succeeded, want 1", wins, n)
	}
	pid := r.corePid(id)
	if st := r.State(id); st["status"] != "created" || !alive(pid) {
		t.Fatalf("winner after the race: %v", st)
	}
	r.OK("start", id)
	r.WaitStatus(id, "running")
	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestCoreConcurrentStart: of several starts of one created container at
// once, exactly one succeeds and the others report it running; none hangs.
func TestCoreConcurrentStart(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	for round := range 3 {
		id := coreID(t, r, fmt.Sprintf("start%d", round))
		r.coreDetached("create", "--bundle", b.Dir, id)
		const n = 3
		results := make([]Result, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = r.coreExec(nil, "start", id)
			}()
		}
		wg.Wait()
		wins := 0
		for i := range n {
			switch {
			case errs[i] != nil:
				t.Errorf("round %d: start #%d: %v", round, i, errs[i])
			case results[i].Code == 0:
				wins++
			case !strings.HasPrefix(results[i].Stderr, "nucleus: cannot start container "+id+": ") || !strings.Contains(results[i].Stderr, "running"):
				t.Errorf("round %d: losing start #%d: stderr %q", round, i, results[i].Stderr)
			}
		}
		if wins != 1 {
			t.Errorf("round %d: %d of %d concurrent starts succeeded, want 1", round, wins, n)
		}
		r.WaitStatus(id, "running")
		r.OK("delete", "--force", id)
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
}

// TestCoreExecMixedFlagForms: runc takes `exec -e A=1 --env B=2`; so must
// nucleus (urfave/cli alone refuses two forms of one flag).
func TestCoreExecMixedFlagForms(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "30")
	id := "core-mixed"
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	defer r.Run(nil, "delete", "--force", id)
	res, err := r.coreExec(nil, "exec", "-e", "A=1", "--env", "B=2", "-u", "65534", "--cwd", "/tmp", id, "sh", "-c", "echo $A$B $(id -u) $(pwd)")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(res.Stdout) != "12 65534 /tmp" {
		t.Fatalf("exec with mixed flag forms: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Warm pools with bind workspaces: sandbox --pool NAME --workspace
// DIR:bind-rw|bind-ro mounts DIR over the taken member's placeholder.

// withoutJSON is a pooled run's stdout without its --json line.
func withoutJSON(res Result) string {
	out := strings.TrimRight(res.Stdout, "\n")
	if i := strings.LastIndex(out, "\n"); i >= 0 {
		return out[:i+1]
	}
	return ""
}

// assertNoWorkspaceMounts: no mount on the host shows dir, as its source
// or its mount point (the bind lives only in the sandbox's mount
// namespace; assertPoolGone checks the members' own mounts).
func assertNoWorkspaceMounts(t *testing.T, dir string) {
	t.Helper()
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (strings.HasPrefix(f[3], dir) || strings.HasPrefix(f[4], dir)) {
			t.Errorf("leftover mount on the host: %s", line)
		}
	}
}

// assertWorkspaceIntact: the user's directory and the files the test put
// there are still there with their content and owner.
func assertWorkspaceIntact(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, want := range files {
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if err != nil || string(data) != want {
			t.Errorf("workspace file %s: %q, %v; want %q", name, data, err, want)
			continue
		}
		if st, _ := os.Lstat(p); st.Sys().(*syscall.Stat_t).Uid != 1000 {
			t.Errorf("workspace file %s: owner changed to %d", name, st.Sys().(*syscall.Stat_t).Uid)
		}
	}
}

// TestPoolBindWorkspace: a bind workspace in a warm sandbox is what a cold
// sandbox's is (same ids inside, writes land on the host at once, as the
// directory's owner, Landlock lets them through); bind-ro is read-only
// and can't be remounted; files in it can't be run unless the pool was
// made with --workspace-exec; nothing is left mounted, and the directory
// survives the sandbox's destruction.
func TestPoolBindWorkspace(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	name := "p2-bind"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "2")
	defer r.Run(nil, "pool", "rm", name)
	r.waitPoolReady(name, 2)
	ws := userWorkspace(t)
	os.WriteFile(filepath.Join(ws, "in.txt"), []byte("from host\n"), 0o644)
	os.MkdirAll(filepath.Join(ws, "sub", "deep"), 0o755)
	os.WriteFile(filepath.Join(ws, "run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755)
	chownTree(t, ws, 1000, 1000)
	files := map[string]string{"in.txt": "from host\n", "run.sh": "#!/bin/sh\necho ran\n"}

	// The same command, cold and warm, sees the same ids and inodes.
	probe := `pwd; id -u; stat -c '%u:%g %i' in.txt; echo made > sub/deep/out.txt && stat -c '%u:%g' sub/deep/out.txt; rm sub/deep/out.txt`
	cold := r.OK("sandbox", "--bundle", b.Dir, "--id", "p2-bind-cold", "--workspace", ws+":bind-rw", "--", "sh", "-c", probe)
	warm := r.Run(nil, "sandbox", "--pool", name, "--json", "--workspace", ws+":bind-rw", "--", "sh", "-c", probe)
	pr := lastJSON(t, warm)
	if warm.Code != 0 || pr.Pool != "warm" || withoutJSON(warm) != cold.Stdout {
		t.Errorf("warm bind-rw: exit %d, %+v, stdout %q, stderr %q; cold stdout %q", warm.Code, pr, warm.Stdout, warm.Stderr, cold.Stdout)
	}
	var ino uint64
	if st, err := os.Stat(filepath.Join(ws, "in.txt")); err == nil {
		ino = st.Sys().(*syscall.Stat_t).Ino
	}
	if !strings.Contains(warm.Stdout, " "+itoa(ino)+"\n") {
		t.Errorf("warm bind-rw: in.txt is not the host's file (inode %d): %q", ino, warm.Stdout)
	}
	// A write lands on the host while the command still runs: no copy.
	bg := r.coreBackground(nil, "sandbox", "--pool", name, "--workspace", ws+":bind-rw", "--", "sh", "-c",
		"echo live > live.txt; while [ ! -e go ]; do sleep 0.1; done; cat go")
	waitForUpTo(t, 30*time.Second, "live.txt on the host", func() bool {
		_, err := os.Stat(filepath.Join(ws, "live.txt"))
		return err == nil
	})
	os.WriteFile(filepath.Join(ws, "go"), []byte("from the host, live\n"), 0o644)
	if res := bg.wait(t); res.Code != 0 || res.Stdout != "from the host, live\n" {
		t.Errorf("live bind: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	if st, err := os.Stat(filepath.Join(ws, "live.txt")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 1000 || st.Sys().(*syscall.Stat_t).Gid != 1000 {
		t.Errorf("live.txt not the workspace owner's: %v", err)
	}
	os.Remove(filepath.Join(ws, "live.txt"))
	os.Remove(filepath.Join(ws, "go"))

	// bind-ro: readable, not writable, not remountable, not removable.
	r.waitPoolReady(name, 2)
	res := r.Run(nil, "sandbox", "--pool", name, "--json", "--workspace", ws+":bind-ro", "--", "sh", "-c",
		`cat in.txt; echo x > new.txt && echo WROTE; echo x >> in.txt && echo APPENDED; rm -f in.txt && echo REMOVED;
		 mount -o remount,rw /workspace && echo REMOUNTED; umount /workspace && echo UNMOUNTED; cat /workspace/in.txt`)
	if pr := lastJSON(t, res); pr.Pool != "warm" || !strings.HasPrefix(res.Stdout, "from host\n") ||
		strings.Count(res.Stdout, "from host\n") != 2 || strings.ContainsAny(withoutJSON(res), "WAPRU") {
		t.Errorf("bind-ro: %+v, stdout %q, stderr %q", pr, res.Stdout, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "Read-only file system") {
		t.Errorf("bind-ro: writes not refused by a read-only mount: %q", res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(ws, "new.txt")); err == nil {
		t.Errorf("bind-ro: new.txt written on the host")
	}
	// A bare DIR stays copy-in-out for pools: a copy, not the host's file.
	r.waitPoolReady(name, 2)
	res = r.Run(nil, "sandbox", "--pool", name, "--json", "--workspace", ws, "--", "stat", "-c", "%i", "in.txt")
	if pr := lastJSON(t, res); res.Code != 0 || pr.Pool != "warm" || withoutJSON(res) == itoa(ino)+"\n" || withoutJSON(res) == "" {
		t.Errorf("bare DIR: exit %d, %+v, stdout %q (host inode %d): want a copy", res.Code, pr, res.Stdout, ino)
	}
	// No exec from the workspace without --workspace-exec.
	r.waitPoolReady(name, 2)
	res = r.Run(nil, "sandbox", "--pool", name, "--workspace", ws+":bind-rw", "--", "sh", "-c", "./run.sh && echo EXECUTED")
	if res.Code == 0 || strings.Contains(res.Stdout, "EXECUTED") || strings.Contains(res.Stdout, "ran") {
		t.Errorf("a file in the workspace ran without --workspace-exec: exit %d, %q %q", res.Code, res.Stdout, res.Stderr)
	}
	assertWorkspaceIntact(t, ws, files)
	assertNoWorkspaceMounts(t, ws)

	// A pool made with --workspace-exec runs it, bound or copied.
	execName := "p2-bindx"
	r.OK("pool", "create", execName, "--bundle", b.Dir, "--size", "2", "--workspace-exec")
	defer r.Run(nil, "pool", "rm", execName)
	r.waitPoolReady(execName, 2)
	for _, kind := range []string{"bind-rw", "copy-in-out"} {
		res = r.Run(nil, "sandbox", "--pool", execName, "--json", "--workspace", ws+":"+kind, "--", "sh", "-c", "./run.sh")
		if pr := lastJSON(t, res); res.Code != 0 || pr.Pool != "warm" || withoutJSON(res) != "ran\n" {
			t.Errorf("--workspace-exec pool, %s: exit %d, %+v, %q %q", kind, res.Code, pr, res.Stdout, res.Stderr)
		}
		r.waitPoolReady(execName, 2)
	}
	ids := append(poolMembers(r, name), poolMembers(r, execName)...)
	pids := memberPids(t, r, ids)
	r.OK("pool", "rm", name)
	r.OK("pool", "rm", execName)
	assertPoolGone(t, r, name, b, ids, pids)
	assertPoolGone(t, r, execName, b, nil, nil)
	assertWorkspaceIntact(t, ws, files)
	assertNoWorkspaceMounts(t, ws)
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestPoolBindAttacks: what a pooled command could try against a bound
// workspace: write outside it (Landlock, which a bind made after the
// sandbox started must not have loosened), climb out with "..", follow
// symlinks the host put in the workspace to host paths, unmount it to
// reach the placeholder; and what the host could suffer when the taker
// is killed or the sandbox deleted under it.
func TestPoolBindAttacks(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	name := "p2-attack"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "2")
	defer r.Run(nil, "pool", "rm", name)
	r.waitPoolReady(name, 2)
	parent := t.TempDir()
	os.Chmod(parent, 0o755)
	ws := filepath.Join(parent, "ws")
	os.Mkdir(ws, 0o755)
	os.WriteFile(filepath.Join(ws, "in.txt"), []byte("mine\n"), 0o644)
	os.WriteFile(filepath.Join(parent, "sibling"), []byte("next to the workspace\n"), 0o644)
	secret := hostSecret(t)
	// Symlinks the host user left in the workspace, to host paths.
	os.Symlink("/etc", filepath.Join(ws, "etc-link"))
	os.Symlink("/etc/passwd", filepath.Join(ws, "passwd-link"))
	os.Symlink(secret, filepath.Join(ws, "secret-link"))
	os.Symlink("..", filepath.Join(ws, "up"))
	chownTree(t, ws, 1000, 1000)
	files := map[string]string{"in.txt": "mine\n"}
	passwd, _ := os.ReadFile("/etc/passwd")

	attack := `
		echo x > /p2-evil && echo W1
		echo x > /dev/p2-evil && echo W2
		echo x > /workspace/../p2-evil && echo W3
		echo x > /workspace/up/p2-evil && echo W4
		echo x > /workspace/etc-link/p2-evil && echo W5
		echo x >> /workspace/passwd-link && echo W6
		cat /workspace/secret-link && echo R1
		cat /workspace/../sibling && echo R2
		cat /workspace/up/sibling && echo R3
		cd /workspace/.. && ls -d bin >/dev/null && echo ROOT-IS-CONTAINER
		umount /workspace && echo U1
		umount -l /workspace && echo U2
		mount --bind /tmp /workspace && echo M1
		ls /workspace
		echo ok > /workspace/still-mine && echo WROTE-WORKSPACE`
	res := r.Run(nil, "sandbox", "--pool", name, "--json", "--workspace", ws+":bind-rw", "--", "sh", "-c", attack)
	out := withoutJSON(res)
	for _, bad := range []string{"W1", "W2", "W3", "W4", "W5", "W6", "R1", "R2", "R3", "U1", "U2", "M1", "host-secret", "next to the workspace"} {
		if strings.Contains(out, bad) {
			t.Errorf("attack %s succeeded: stdout %q, stderr %q", bad, out, res.Stderr)
		}
	}
	for _, want := range []string{"ROOT-IS-CONTAINER", "in.txt", "WROTE-WORKSPACE"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %s in the attack's output: %q, stderr %q", want, out, res.Stderr)
		}
	}
	if pr := lastJSON(t, res); pr.Pool != "warm" {
		t.Errorf("attack ran %+v, want warm", pr)
	}
	// Landlock (not only the ids) refused the writes outside.
	if !strings.Contains(res.Stderr, "/dev/p2-evil: Permission denied") {
		t.Errorf("the write to /dev was not refused by Landlock: %q", res.Stderr)
	}
	for _, p := range []string{"/p2-evil", "/etc/p2-evil", filepath.Join(parent, "p2-evil")} {
		if _, err := os.Lstat(p); err == nil {
			os.Remove(p)
			t.Errorf("the sandbox wrote %s on the host", p)
		}
	}
	if now, _ := os.ReadFile("/etc/passwd"); string(now) != string(passwd) {
		t.Errorf("/etc/passwd changed")
	}
	assertSecretIntact(t, secret)
	files["still-mine"] = "ok\n"
	assertWorkspaceIntact(t, ws, files)
	assertNoWorkspaceMounts(t, ws)

	// The taker killed while its command runs in the bound workspace:
	// the next refill removes the sandbox, the directory stays.
	r.waitPoolReady(name, 2)
	taker := r.Cmd("sandbox", "--pool", name, "--workspace", ws+":bind-rw", "--", "sh", "-c", "echo busy > busy.txt; sleep 100")
	if err := taker.Start(); err != nil {
		t.Fatal(err)
	}
	waitForUpTo(t, 30*time.Second, "the taker's command to run", func() bool {
		_, err := os.Stat(filepath.Join(ws, "busy.txt"))
		return err == nil
	})
	taken := poolMembers(r, name)
	taker.Process.Kill()
	taker.Wait()
	r.OK("pool", "fill", name)
	r.waitPoolReady(name, 2)
	files["busy.txt"] = "busy\n"
	assertWorkspaceIntact(t, ws, files)
	assertNoWorkspaceMounts(t, ws)

	// The taken sandbox deleted under its running command.
	before := poolMembers(r, name)
	bg := r.coreBackground(nil, "sandbox", "--pool", name, "--json", "--workspace", ws+":bind-rw", "--", "sh", "-c", "echo doomed > doomed.txt; sleep 100")
	waitForUpTo(t, 30*time.Second, "the doomed command to run", func() bool {
		_, err := os.Stat(filepath.Join(ws, "doomed.txt"))
		return err == nil
	})
	s, _ := r.poolStatus(name)
	var victim string
	for _, id := range before {
		if data, err := os.ReadFile(filepath.Join(r.Root, "@pool-"+name, "taken", id)); err == nil && len(data) > 0 {
			victim = id
		}
	}
	if victim == "" {
		t.Fatalf("no taken member among %v (%+v)", before, s)
	}
	r.OK("delete", "--force", victim)
	if res := bg.wait(t); res.Code == 0 {
		t.Errorf("the command in a deleted sandbox exited 0: %q %q", res.Stdout, res.Stderr)
	}
	files["doomed.txt"] = "doomed\n"
	assertWorkspaceIntact(t, ws, files)
	assertNoWorkspaceMounts(t, ws)
	all := append(append(taken, before...), poolMembers(r, name)...)
	pids := memberPids(t, r, poolMembers(r, name))
	r.OK("pool", "rm", name)
	assertPoolGone(t, r, name, b, all, pids)
	assertWorkspaceIntact(t, ws, files)
	assertNoWorkspaceMounts(t, ws)
}

// TestPoolBindRefusals: a bind workspace the pool can't take fails with
// one line naming it, before a sandbox is taken.
func TestPoolBindRefusals(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	name := "p2-bindref"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "1", "--no-fill")
	defer r.Run(nil, "pool", "rm", name)
	r.OK("pool", "fill", name)
	rootWS := t.TempDir()
	os.Chmod(rootWS, 0o755)
	ws := userWorkspace(t)
	for _, c := range []struct {
		arg   string
		wants []string
	}{
		{rootWS + ":bind-rw", []string{"--workspace", rootWS, "owned by root", "copy-in-out", "bind-ro"}},
		{filepath.Join(ws, "missing") + ":bind-ro", []string{"--workspace", "missing", "not a directory"}},
		{ws + ":/elsewhere:bind-rw", []string{"--workspace", "/workspace"}},
		{ws + ":bogus", []string{"--workspace", "bogus"}},
	} {
		res := r.Fail(c.wants, "sandbox", "--pool", name, "--workspace", c.arg, "--", "true")
		if strings.Contains(strings.TrimSpace(res.Stderr), "\n") {
			t.Errorf("%s: refusal not one line: %q", c.arg, res.Stderr)
		}
	}
	if s, _ := r.poolStatus(name); s.Ready != 1 || s.Taken != 0 {
		t.Errorf("refused requests took a sandbox: %+v", s)
	}
	ids := poolMembers(r, name)
	pids := memberPids(t, r, ids)
	r.OK("pool", "rm", name)
	assertPoolGone(t, r, name, b, ids, pids)
}

// buildPoolAPI builds testdata/poolapi, a platform's program using the Go
// API: static and with cgo, as nucleus is, since it is also its sandboxes'
// init and pre-exec step.
func buildPoolAPI(t *testing.T) string {
	t.Helper()
	requireCmd(t, "go")
	out := filepath.Join(t.TempDir(), "poolapi")
	cmd := exec.Command("go", "build", "-tags", "seccomp netgo osusergo urfave_cli_no_docs",
		"-ldflags", "-extldflags -static", "-o", out, "./testdata/poolapi")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build poolapi: %v\n%s", err, b)
	}
	return out
}

// TestPoolGoAPI: a program using the Go API (sandbox.FromPool) takes from
// a pool the command line made, binds its workspace, gets the result with
// where it ran; its own binary then destroys the used sandbox and refills
// the pool, whose new members the command line uses in turn.
func TestPoolGoAPI(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	api := buildPoolAPI(t)
	name := "p2-goapi"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "2")
	defer r.Run(nil, "pool", "rm", name)
	r.waitPoolReady(name, 2)
	first := poolMembers(r, name)
	ws := userWorkspace(t)
	os.WriteFile(filepath.Join(ws, "in.txt"), []byte("for the api\n"), 0o644)
	chownTree(t, ws, 1000, 1000)

	out, err := exec.Command(api, r.Root, name, ws, "bind-rw", "--", "sh", "-c", "cat in.txt; echo api > api.txt; exit 4").Output()
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	var res struct {
		ID     string `json:"id"`
		Status int    `json:"status"`
		Pool   string `json:"pool"`
	}
	if json.Unmarshal([]byte(lines[len(lines)-1]), &res) != nil || lines[0] != "for the api" || res.Status != 4 || res.Pool != "warm" || !contains(first, res.ID) {
		t.Fatalf("poolapi: %v, output %q, result %+v (members %v)", err, out, res, first)
	}
	if code := exitCode(err); code != 4 {
		t.Errorf("poolapi exit %d, want the command's 4", code)
	}
	if st, err := os.Stat(filepath.Join(ws, "api.txt")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Errorf("the API's bind-rw write is not on the host as the owner's: %v", err)
	}
	// Its detached release (the program itself, as pool.Command).
	waitForUpTo(t, 30*time.Second, "the used sandbox to be removed", func() bool {
		_, err := os.Stat(filepath.Join(r.Root, "@sandbox-"+res.ID))
		return err != nil
	})
	assertNoSandboxLeftovers(t, r, res.ID, b.Dir)
	r.waitPoolReady(name, 2)
	// The command line takes what the program's refill made.
	cli := r.Run(nil, "sandbox", "--pool", name, "--json", "--workspace", ws+":bind-ro", "--", "cat", "api.txt")
	if pr := lastJSON(t, cli); cli.Code != 0 || pr.Pool != "warm" || withoutJSON(cli) != "api\n" {
		t.Errorf("CLI after the API: exit %d, %+v, %q %q", cli.Code, pr, cli.Stdout, cli.Stderr)
	}
	// Refused by the API: one line, no sandbox taken.
	r.waitPoolReady(name, 2)
	msg, err := exec.Command(api, r.Root, name, ws, "bogus", "--", "true").CombinedOutput()
	if exitCode(err) != 125 || !strings.Contains(string(msg), "bogus") {
		t.Errorf("poolapi with kind bogus: %v %q", err, msg)
	}
	if s, _ := r.poolStatus(name); s.Ready != 2 || s.Taken != 0 {
		t.Errorf("a refused API call took a sandbox: %+v", s)
	}
	all := append(first, poolMembers(r, name)...)
	pids := memberPids(t, r, poolMembers(r, name))
	r.OK("pool", "rm", name)
	assertPoolGone(t, r, name, b, all, pids)
	assertNoWorkspaceMounts(t, ws)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestPoolBindBrokenMember: a member whose supervisor was killed is
// skipped for a bind as for a copy (never given the workspace), and the
// command runs cold with the same bind.
func TestPoolBindBrokenMember(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t)
	name := "p2-bindbroken"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "1", "--no-fill")
	defer r.Run(nil, "pool", "rm", name)
	r.OK("pool", "fill", name)
	ids := poolMembers(r, name)
	pids := memberPids(t, r, ids)
	if len(pids) != 1 {
		t.Fatalf("members %v, pids %v", ids, pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	waitForUpTo(t, 10*time.Second, "the supervisor to die", func() bool { return !alive(pids[0]) })
	ws := userWorkspace(t)
	res := r.Run(nil, "sandbox", "--pool", name, "--json", "--workspace", ws+":bind-rw", "--", "sh", "-c", "echo cold > cold.txt; echo ran")
	if pr := lastJSON(t, res); res.Code != 0 || withoutJSON(res) != "ran\n" || !strings.HasPrefix(pr.Pool, "cold") || contains(ids, pr.ID) {
		t.Errorf("with a dead member: exit %d, %+v, stdout %q, stderr %q", res.Code, pr, res.Stdout, res.Stderr)
	}
	if st, err := os.Stat(filepath.Join(ws, "cold.txt")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Errorf("the cold bind's write: %v", err)
	}
	r.waitPoolReady(name, 1)
	all := append(ids, poolMembers(r, name)...)
	pids = append(pids, memberPids(t, r, poolMembers(r, name))...)
	r.OK("pool", "rm", name)
	assertPoolGone(t, r, name, b, all, pids)
	assertNoWorkspaceMounts(t, ws)
}

package integration

// Secrets (--secret, --secret-env) as an attacker looking for them on the
// host would: every place nucleus could have written them is searched
// while the service runs, and the file the service gets is checked as the
// service sees it. Container ids start with "sv-".

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// svID is a fresh "sv-<name>-<random>" id, force-deleted at cleanup.
func svID(t testing.TB, r *Runner, name string) string {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	id := "sv-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { _ = r.Cmd("delete", "--force", id).Run() })
	return id
}

// productionArgs are the flags production mode requires (a memory limit,
// the built-in seccomp allowlist pinned).
func productionArgs(t *testing.T, r *Runner) []string {
	prof, sum := builtinProfile(t, r)
	return []string{"--mode", "production", "--memory", "256M", "--seccomp-profile", prof, "--seccomp-profile-sha256", sum}
}

func randomValue(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// treeHolds lists the files under dir whose content holds needle.
func treeHolds(dir, needle string) []string {
	var found []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(needle)) {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// procsHolding lists "pid/file" for every process whose cmdline or environ
// holds needle.
func procsHolding(needle string) []string {
	var found []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		for _, f := range []string{"cmdline", "environ"} {
			if data, err := os.ReadFile(filepath.Join(d, f)); err == nil && bytes.Contains(data, []byte(needle)) {
				found = append(found, filepath.Base(d)+"/"+f)
			}
		}
	}
	return found
}

// memHolds reports whether pid's writable memory holds needle.
func memHolds(t *testing.T, pid int, needle string) bool {
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatalf("maps: %v", err)
	}
	defer maps.Close()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatalf("mem: %v", err)
	}
	defer mem.Close()
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[1], "rw") {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, _ := strconv.ParseUint(lo, 16, 64)
		end, _ := strconv.ParseUint(hi, 16, 64)
		buf := make([]byte, end-start)
		n, _ := mem.ReadAt(buf, int64(start))
		if bytes.Contains(buf[:n], []byte(needle)) {
			return true
		}
	}
	return false
}

func TestServiceSecrets(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", `stat -c "%a %u %g %s" /run/secrets/db; cat /run/secrets/db; echo; cat /run/secrets/tok; echo
grep " /run/secrets " /proc/self/mountinfo; echo "PASS=$PASS"; echo READY; sleep 4`)
	b.Spec.Process.User.UID, b.Spec.Process.User.GID = 1000, 1000
	b.Save(t)
	fileVal, envVal, weakVal := randomValue("filesecret-"), randomValue("envsecret-"), randomValue("weaksecret-")
	secretFile := filepath.Join(t.TempDir(), "db-password")
	if err := os.WriteFile(secretFile, []byte(fileVal), 0o600); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(t.TempDir(), "audit.log")
	id := svID(t, r, "secret")
	args := append([]string{"run"}, productionArgs(t, r)...)
	args = append(args, "--audit-log", audit, "--secret", secretFile+":db", "--secret", "env:SV_TOKEN:tok",
		"--secret-env", "PASS=SV_WEAK", "--bundle", b.Dir, id)
	cmd := r.Cmd(args...)
	cmd.Env = append(os.Environ(), "SV_TOKEN="+envVal, "SV_WEAK="+weakVal)
	out, errOut := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	waitForUpTo(t, 30*time.Second, "the service to read its secrets", func() bool { return strings.Contains(out.String(), "READY") })

	// The attack, while the service runs: everything nucleus keeps on
	// the host, every process's argv and environment, the CLI's memory.
	cli := cmd.Process.Pid
	for _, v := range []string{fileVal, envVal, weakVal} {
		for _, dir := range []string{r.Root, b.Dir} {
			if f := treeHolds(dir, v); len(f) > 0 {
				t.Errorf("secret %s written to %v", v[:10], f)
			}
		}
		if data, _ := os.ReadFile(audit); bytes.Contains(data, []byte(v)) {
			t.Errorf("secret %s in the audit log", v[:10])
		}
	}
	if p := procsHolding(fileVal); len(p) > 0 {
		t.Errorf("the file secret is in a process's argv or environment: %v", p)
	}
	// env:VAR's value is in the caller's own environment by the caller's
	// choice, and --secret-env's in the workload's too: nowhere else.
	for _, p := range procsHolding(envVal) {
		if p != fmt.Sprintf("%d/environ", cli) {
			t.Errorf("the env: secret is in %s (nucleus is %d)", p, cli)
		}
	}
	if memHolds(t, cli, fileVal) {
		t.Errorf("the file secret is still in nucleus's memory after the copy")
	}
	<-done
	if cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("run: exit %d: %s", cmd.ProcessState.ExitCode(), errOut.String())
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 5 {
		t.Fatalf("service output: %q", out.String())
	}
	if lines[0] != fmt.Sprintf("400 1000 1000 %d", len(fileVal)) {
		t.Errorf("/run/secrets/db: mode, owner, size %q; want 0400, 1000:1000, %d bytes", lines[0], len(fileVal))
	}
	if lines[1] != fileVal || lines[2] != envVal {
		t.Errorf("secrets as the service reads them: %q, %q", lines[1], lines[2])
	}
	for _, fl := range []string{"ro", "nosuid", "nodev", "noexec"} {
		if !strings.Contains(lines[3], " "+fl+",") && !strings.Contains(lines[3], ","+fl+",") || !strings.Contains(lines[3], "tmpfs") {
			t.Errorf("/run/secrets mount %q: want a tmpfs with %s", lines[3], fl)
		}
	}
	if !strings.Contains(lines[3], "size=1024k") {
		t.Errorf("/run/secrets mount %q: want size=1024k", lines[3])
	}
	if lines[4] != "PASS="+weakVal {
		t.Errorf("--secret-env: %q", lines[4])
	}
	log, _ := os.ReadFile(audit)
	if !bytes.Contains(log, []byte(`"event":"secrets_mounted"`)) || !bytes.Contains(log, []byte(`"weaker":true`)) {
		t.Errorf("audit log lacks secrets_mounted or the weaker secret_env event:\n%s", log)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestServiceSecretErrors: bad secrets are one-line errors naming the
// flag, and leave nothing behind.
func TestServiceSecretErrors(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "true")
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, bytes.Repeat([]byte("x"), 1<<20+1), 0o600)
	half := filepath.Join(t.TempDir(), "half")
	os.WriteFile(half, bytes.Repeat([]byte("x"), 600<<10), 0o600)
	prod := productionArgs(t, r)
	for _, c := range []struct {
		name  string
		flags []string
		wants []string
	}{
		{"missing", []string{"--secret", "/nonexistent/sv-secret:db"}, []string{"--secret", "/nonexistent/sv-secret", "no such file"}},
		{"unset", []string{"--secret", "env:SV_UNSET_VAR:db"}, []string{"--secret", "SV_UNSET_VAR", "not set"}},
		{"unsetenv", []string{"--secret-env", "PASS=SV_UNSET_VAR"}, []string{"--secret-env", "SV_UNSET_VAR", "not set"}},
		{"big", []string{"--secret", big + ":db"}, []string{"--secret", big, "limit"}},
		{"total", []string{"--secret", half + ":a", "--secret", half + ":b"}, []string{"--secret", half, "limit"}},
		{"name", []string{"--secret", half + ":../x"}, []string{"--secret", "plain file name"}},
		{"syntax", []string{"--secret", "nocolon"}, []string{"--secret", "SRC:NAME"}},
	} {
		id := svID(t, r, "bad"+c.name)
		r.coreFor(t).Fail(c.wants, append(append(append([]string{"run"}, prod...), c.flags...), "--bundle", b.Dir, id)...)
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
}

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const pgBin = "/usr/lib/postgresql/15/bin"

// postgresExtraSyscalls are what PostgreSQL 15 needs beyond the built-in
// allowlist: System V shared memory (its postmaster interlock), I/O
// priority and write-back hints. scripts/bench.d/postgres.sh adds the same.
var postgresExtraSyscalls = []string{"shmget", "shmat", "shmdt", "shmctl", "getpriority", "setpriority", "pwritev", "sync_file_range"}

// postgresProfile is the built-in allowlist plus what PostgreSQL needs
// (and prctl(PR_GET_SECUREBITS), which libcap asks at start), pinned.
func postgresProfile(t *testing.T, r *Runner) (string, string) {
	t.Helper()
	var prof specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(r.OK("policy", "show").Stdout), &prof); err != nil {
		t.Fatal(err)
	}
	prof.Syscalls = append(prof.Syscalls,
		specs.LinuxSyscall{Names: postgresExtraSyscalls, Action: specs.ActAllow},
		specs.LinuxSyscall{Names: []string{"prctl"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 27, Op: specs.OpEqualTo}}})
	data, _ := json.Marshal(prof)
	f := filepath.Join(t.TempDir(), "postgres-seccomp.json")
	os.WriteFile(f, data, 0o644)
	sum := sha256.Sum256(data)
	return f, hex.EncodeToString(sum[:])
}

// postgresBundle runs PostgreSQL from the host's /usr as uid 1000, without
// a sysfs mount (production mode refuses one on the host's network).
func postgresBundle(t *testing.T) *Bundle {
	b := hostUsrBundle(t, pgBin+"/postgres", pgBin+"/initdb")
	os.WriteFile(filepath.Join(b.Rootfs, "etc", "passwd"), []byte("root:x:0:0:root:/:/bin/sh\npostgres:x:1000:1000:postgres:/tmp:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(b.Rootfs, "etc", "group"), []byte("root:x:0:\npostgres:x:1000:\n"), 0o644)
	b.Spec.Process.User = specs.User{UID: 1000, GID: 1000}
	b.Spec.Process.Env = []string{"PATH=" + pgBin + ":/usr/bin:/bin", "LC_ALL=C", "HOME=/tmp"}
	var mounts []specs.Mount
	for _, m := range b.Spec.Mounts {
		if m.Type != "sysfs" {
			mounts = append(mounts, m)
		}
	}
	b.Spec.Mounts = mounts
	b.Save(t)
	return b
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestServicePostgres runs Debian's PostgreSQL 15 as a production-mode
// service on the host's network with a bind-mounted data dir: initdb in
// one container, the server in a detached one, a query from the host's
// psql, and a clean shutdown on SIGTERM.
func TestServicePostgres(t *testing.T) {
	r := newRunner(t)
	psql := requireCmd(t, "psql")
	b := postgresBundle(t)
	prof, sum := postgresProfile(t, r)
	data := userWorkspace(t)
	port := strconv.Itoa(freePort(t))
	common := []string{"--mode", "production", "--memory", "1G", "--seccomp-profile", prof, "--seccomp-profile-sha256", sum,
		"--workspace", data + ":/workspace:bind-rw", "--bundle", b.Dir}

	b.Spec.Process.Args = []string{"initdb", "-D", "/workspace/pg", "--no-locale", "-E", "UTF8", "-U", "postgres", "-A", "trust"}
	b.Save(t)
	initID := svID(t, r, "pginit")
	if res := r.Run(nil, append(append([]string{"run"}, common...), initID)...); res.Code != 0 {
		t.Fatalf("initdb in the container: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}

	b.Spec.Process.Args = []string{"postgres", "-D", "/workspace/pg", "-k", "/tmp", "-c", "listen_addresses=127.0.0.1", "-p", port}
	b.Save(t)
	id := svID(t, r, "pg")
	res, err := r.coreExec(nil, append(append([]string{"run", "-d", "--net", "host"}, common...), id)...)
	if err != nil || res.Code != 0 {
		t.Fatalf("run -d postgres: %v %+v", err, res)
	}
	query := func(sql string) (string, error) {
		out, err := exec.Command(psql, "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-Atc", sql, "postgres").CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	waitForUpTo(t, 60*time.Second, "postgres to accept connections", func() bool {
		_, err := query("select 1")
		return err == nil
	})
	for _, sql := range []string{"create table kv (k text primary key, v int)", "insert into kv values ('answer', 42)"} {
		if out, err := query(sql); err != nil {
			t.Fatalf("%s: %v: %s", sql, err, out)
		}
	}
	if out, err := query("select v from kv where k = 'answer'"); err != nil || out != "42" {
		t.Fatalf("query: %v: %q", err, out)
	}
	r.OK("kill", id, "TERM")
	waitForUpTo(t, 60*time.Second, "postgres to stop", func() bool { return r.State(id)["status"] == "stopped" })
	// A clean shutdown: the control file says so and the pid file is gone.
	out, err := exec.Command(pgBin+"/pg_controldata", filepath.Join(data, "pg")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Database cluster state:               shut down") {
		t.Errorf("pg_controldata: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, "pg", "postmaster.pid")); err == nil {
		t.Errorf("postmaster.pid left: postgres did not shut down cleanly")
	}
	r.OK("delete", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
	assertNoLeftovers(t, r.Root, initID, b.Dir)
}

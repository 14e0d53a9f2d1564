package integration

// Attacks on the pre-exec step (the Landlock/seccomp step that runs inside
// the container ahead of the workload) and on what it is handed: /dev as
// a place to write and run binaries, top-level symlinks in the rootfs, the
// Go-to-C record and the compiled seccomp cache. Container ids start with
// px- so they never collide with other suites running on the same host.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// readAudit parses an audit log; every line must be one JSON object.
func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Errorf("audit line is not one JSON object: %q", sc.Text())
			continue
		}
		events = append(events, e)
	}
	return events
}

// auditEvent returns the last event named name (nil if none).
func auditEvent(events []map[string]any, name string) map[string]any {
	var found map[string]any
	for _, e := range events {
		if e["event"] == name {
			found = e
		}
	}
	return found
}

// scratchMount adds an exec-capable writable tmpfs at /scratch: a place
// where only Landlock decides whether a written file may run.
func scratchMount(b *Bundle) {
	os.MkdirAll(filepath.Join(b.Rootfs, "scratch"), 0o755)
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs",
		Options: []string{"nosuid", "nodev", "mode=1777", "size=64m"}})
}

// landlockPolicy writes a Landlock policy file and returns the flags that
// pin it.
func landlockPolicy(t *testing.T, body string) []string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "landlock.json")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	return []string{"--landlock-policy", file, "--landlock-policy-sha256", hex.EncodeToString(sum[:])}
}

// Item 7: /dev is mounted noexec and only its standard nodes, /dev/shm and
// /dev/pts are writable.
func TestPreexecDevNoexecAndReadOnly(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	for _, mode := range []string{"agent", "strict-agent"} {
		flags := []string{"--mode", mode}
		id := "px-dev-" + mode
		// A binary written into /dev can't be run: writing there fails.
		if res := r.sandbox(b, id+"-x", flags, "probe", "copy-exec", "/dev/p"); !strings.Contains(res.Stdout, "COPY FAILED") {
			t.Errorf("%s: copy-exec /dev/p: want the write refused, got %q (stderr %q)", mode, res.Stdout, res.Stderr)
		}
		expectLine(t, r.sandbox(b, id+"-new", flags, "probe", "write", "/dev/newfile"), "DENIED EACCES")
		expectLine(t, r.sandbox(b, id+"-null", flags, "probe", "write", "/dev/null"), "ALLOWED")
		expectLine(t, r.sandbox(b, id+"-shm", flags, "probe", "write", "/dev/shm/x"), "ALLOWED")
		expectLine(t, r.sandbox(b, id+"-xshm", flags, "probe", "copy-exec", "/dev/shm/p"), "DENIED EACCES")
		res := r.sandbox(b, id+"-mnt", flags, "sh", "-c", "grep -E ' /dev(/shm)? ' /proc/self/mountinfo")
		for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
			if f := strings.Fields(line); len(f) < 6 || !strings.Contains(","+f[5]+",", ",noexec,") {
				t.Errorf("%s: mount without noexec: %q", mode, line)
			}
		}
		if strings.Count(res.Stdout, "\n") != 2 {
			t.Errorf("%s: want /dev and /dev/shm in mountinfo, got %q", mode, res.Stdout)
		}
	}
	// Without Landlock the mount alone still refuses to run from /dev.
	cmd := r.Cmd("sandbox", "--bundle", b.Dir, "--id", "px-dev-noll", "--", "probe", "copy-exec", "/dev/p")
	cmd.Env = append(os.Environ(), "NUCLEUS_DISABLE=landlock")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("agent mode without Landlock should warn and run: %v", err)
	}
	if !strings.Contains(string(out), "DENIED EACCES") {
		t.Errorf("without Landlock, exec from /dev: want the noexec mount to refuse it, got %q", out)
	}
	assertNoLeftovers(t, r.Root, "px-dev-noll", b.Dir)
}

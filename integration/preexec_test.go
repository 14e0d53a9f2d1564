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
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
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

// Item 8: a top-level symlink must not carry execute to its target.
func TestPreexecTopLevelSymlinkGrantsNoExec(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	if err := os.Symlink("/dev", filepath.Join(b.Rootfs, "devlink")); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"agent", "strict-agent"} {
		res := r.sandbox(b, "px-devlink-"+mode, []string{"--mode", mode}, "probe", "copy-exec", "/dev/p")
		if strings.Contains(res.Stdout, "ALLOWED") {
			t.Errorf("%s: a binary written to /dev ran (devlink -> /dev granted exec): %q", mode, res.Stdout)
		}
	}
	// The same through a mount that allows exec, so that only Landlock
	// decides: /scratch is writable and kept out of exec by the policy.
	scratchMount(b)
	if err := os.Symlink("/scratch", filepath.Join(b.Rootfs, "scratchlink")); err != nil {
		t.Fatal(err)
	}
	b.Save(t)
	flags := landlockPolicy(t, `{"write":["/scratch"],"no_exec_root":["/scratch"]}`)
	for _, mode := range []string{"agent", "strict-agent"} {
		res := r.sandbox(b, "px-scrlink-"+mode, append([]string{"--mode", mode}, flags...), "probe", "copy-exec", "/scratch/p")
		expectLine(t, res, "DENIED EACCES")
	}
	// A rule path through a symlink grants nothing either: it is skipped,
	// and the audit log says so.
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	flags = landlockPolicy(t, `{"write":["/scratch"],"no_exec_root":["/scratch"],"exec":["/scratchlink"]}`)
	res := r.sandbox(b, "px-scrlink-rule", append([]string{"--audit-log", log}, flags...), "probe", "copy-exec", "/scratch/p")
	expectLine(t, res, "DENIED EACCES")
	if e := auditEvent(readAudit(t, log), "landlock_rule_skipped"); e == nil || e["path"] != "/scratchlink" {
		t.Errorf("landlock_rule_skipped = %v, want one for /scratchlink", e)
	}
}

// Item 8: an entry of / that can't be opened is skipped (and logged); the
// rest of the ruleset still applies.
func TestPreexecUnopenableEntryKeepsLandlock(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	if err := os.Symlink("loop", filepath.Join(b.Rootfs, "loop")); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	res := r.sandbox(b, "px-loop", []string{"--audit-log", log}, "probe", "write", "/dev/px")
	expectLine(t, res, "DENIED EACCES")
	events := readAudit(t, log)
	e := auditEvent(events, "landlock_applied")
	if e == nil || e["applied"] != true || e["posture"] != "agent" {
		t.Errorf("landlock_applied = %v, want applied in posture agent", e)
	}
	if links, _ := e["symlinks_not_granted"].([]any); len(links) != 1 || links[0] != "/loop" {
		t.Errorf("landlock_applied lists symlinks_not_granted %v, want [/loop]", e["symlinks_not_granted"])
	}
}

// Item 8: when the step loses Landlock (agent mode goes on without it),
// every event from then on says agent-degraded.
func TestPreexecLostLandlockDegradesPosture(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	probe := buildProbe(t)
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	id := "px-degraded"
	cmd := exec.Command(probe, append([]string{"deny-landlock-restrict", r.Bin, "--root", r.Root},
		"sandbox", "--bundle", b.Dir, "--id", id, "--audit-log", log, "--", "probe", "write", "/dev/px")...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("agent sandbox without landlock_restrict_self: %v\n%s", err, out)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
	events := readAudit(t, log)
	ll := auditEvent(events, "landlock_applied")
	if ll == nil || ll["applied"] != false || ll["posture"] != "agent-degraded" {
		t.Errorf("landlock_applied = %v, want applied false in posture agent-degraded", ll)
	}
	if e := auditEvent(events, "container_exited"); e == nil || e["posture"] != "agent-degraded" {
		t.Errorf("container_exited = %v, want posture agent-degraded", e)
	}
}

// Item 9: the rule lists reach the step whole; lists beyond the limits
// refuse the start instead of being cut short.
func TestPreexecRecordLimits(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	scratchMount(b)
	b.Save(t)
	// 70 other top-level dirs kept out of exec, then /scratch: once cut
	// at 64 entries, /scratch got execute.
	var noexec []string
	for i := 0; i < 70; i++ {
		noexec = append(noexec, fmt.Sprintf("%q", fmt.Sprintf("/d%d", i)))
	}
	noexec = append(noexec, `"/scratch"`)
	flags := landlockPolicy(t, `{"write":["/scratch"],"no_exec_root":[`+strings.Join(noexec, ",")+`]}`)
	expectLine(t, r.sandbox(b, "px-many", flags, "probe", "copy-exec", "/scratch/p"), "DENIED EACCES")

	var tooMany []string
	for i := 0; i < 1000; i++ {
		tooMany = append(tooMany, fmt.Sprintf(`"/r%d"`, i))
	}
	flags = landlockPolicy(t, `{"read":[`+strings.Join(tooMany, ",")+`]}`)
	r.Fail([]string{"too many"}, append(append([]string{"sandbox", "--bundle", b.Dir, "--id", "px-toomany"}, flags...), "--", "true")...)
	assertNoLeftovers(t, r.Root, "px-toomany", b.Dir)

	flags = landlockPolicy(t, `{"read":["/`+strings.Repeat("a", 5000)+`"]}`)
	r.Fail([]string{"too long"}, append(append([]string{"sandbox", "--bundle", b.Dir, "--id", "px-toolong"}, flags...), "--", "true")...)
	assertNoLeftovers(t, r.Root, "px-toolong", b.Dir)
}

// Item 9: names from the rootfs can't forge audit fields or lines.
func TestPreexecAuditNamesEscaped(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	names := []string{`x","applied":true,"y":"`, "nl\n{\"event\":\"forged\"}", "bs\\q\"\x01\x7f"}
	for _, n := range names {
		// Loops: opening them (following links) fails, and the name
		// is reported.
		if err := os.Symlink(n, filepath.Join(b.Rootfs, n)); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	res := r.sandbox(b, "px-names", []string{"--audit-log", log}, "probe", "write", "/dev/px")
	events := readAudit(t, log)
	landlockOn := strings.Contains(res.Stdout, "DENIED EACCES")
	ll := auditEvent(events, "landlock_applied")
	if ll == nil {
		t.Fatalf("no landlock_applied event in %v", events)
	}
	if (ll["applied"] == true) != landlockOn {
		t.Errorf("landlock_applied says applied=%v but a write to /dev was %q", ll["applied"], res.Stdout)
	}
	if !landlockOn {
		t.Errorf("Landlock dropped because of unopenable entries: %q", res.Stdout)
	}
	for _, e := range events {
		if e["event"] == "forged" {
			t.Errorf("a file name forged an event: %v", e)
		}
	}
	listed := map[string]bool{}
	links, _ := ll["symlinks_not_granted"].([]any)
	for _, l := range links {
		p, _ := l.(string)
		listed[p] = true
	}
	for _, n := range names {
		if !listed["/"+n] {
			t.Errorf("landlock_applied does not name %q exactly in symlinks_not_granted (got %v)", "/"+n, links)
		}
	}
}

// Item 9: nothing the runtime hands the step reaches the workload.
func TestPreexecNoDescriptorsLeak(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	res := r.sandbox(b, "px-fds", []string{"--audit-log", log}, "probe", "fds")
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "FD" {
			t.Fatalf("probe fds: %q (stderr %q)", res.Stdout, res.Stderr)
		}
		target := ""
		if len(f) == 3 {
			target = f[2]
		}
		// stdio, and what the probe's own Go runtime opens (its
		// directory listing, cgroup CPU limits, epoll).
		if f[1] == "0" || f[1] == "1" || f[1] == "2" || target == "" || target == "/proc/self/fd" ||
			strings.HasPrefix(target, "/sys/fs/cgroup/") || strings.HasPrefix(target, "anon_inode:") {
			continue
		}
		t.Errorf("descriptor leaked into the workload: %s", line)
	}
}

// Item 10: a tampered compiled filter in the cache is never loaded.
func TestPreexecSeccompCacheTamper(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	// A profile of our own (the errno of a syscall never made marks its
	// program), so that only this test's cache entry is touched.
	marker := uint32(1000 + rand.Intn(3000))
	prof := fmt.Sprintf(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
		{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
		{"names":["acct"],"action":"SCMP_ACT_ERRNO","errnoRet":%d}]}`, marker)
	profFile := filepath.Join(t.TempDir(), "profile.json")
	os.WriteFile(profFile, []byte(prof), 0o644)
	flags := []string{"--seccomp-profile", profFile}
	expectLine(t, r.sandbox(b, "px-scc-1", flags, "probe", "keyctl"), "DENIED EPERM")

	dir := "/var/cache/nucleus/seccomp"
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], 0x00050000|marker)
	var cached string
	files, _ := filepath.Glob(filepath.Join(dir, "*.bpf"))
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil && bytes.Contains(data, k[:]) {
			cached = f
		}
	}
	need(t, cached != "", "the compiled filter is cached in "+dir)
	defer os.Remove(strings.TrimSuffix(cached, ".bpf") + ".sha256")
	defer os.Remove(cached)
	// One instruction: return ALLOW.
	allowAll := []byte{0x06, 0, 0, 0, 0, 0, 0xff, 0x7f}

	tmp := cached + ".px-tmp"
	os.WriteFile(tmp, allowAll, 0o600)
	if err := os.Rename(tmp, cached); err != nil {
		t.Fatal(err)
	}
	res := r.sandbox(b, "px-scc-2", flags, "probe", "keyctl")
	if res.Code == 0 || strings.Contains(res.Stdout, "ALLOWED") || !strings.Contains(res.Stderr, "seccomp") {
		t.Errorf("replaced cache file: exit %d, stdout %q, stderr %q; want the start refused", res.Code, res.Stdout, res.Stderr)
	}

	elsewhere := filepath.Join(t.TempDir(), "allow.bpf")
	os.WriteFile(elsewhere, allowAll, 0o600)
	os.Remove(cached)
	if err := os.Symlink(elsewhere, cached); err != nil {
		t.Fatal(err)
	}
	res = r.sandbox(b, "px-scc-3", flags, "probe", "keyctl")
	if res.Code == 0 || strings.Contains(res.Stdout, "ALLOWED") || !strings.Contains(res.Stderr, "seccomp") {
		t.Errorf("cache file made a symlink: exit %d, stdout %q, stderr %q; want the start refused", res.Code, res.Stdout, res.Stderr)
	}
}

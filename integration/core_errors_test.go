package integration

// Bad input: one line on stderr naming the file and field, a non-zero exit,
// and nothing left behind.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The bundles here run `true`, so even a create that wrongly succeeded
// would not hold Runner.Fail's output pipes open for long.
func TestCoreBadBundles(t *testing.T) {
	r := newRunner(t)
	for _, tc := range []struct {
		name string
		// edit breaks a good bundle; it returns the --bundle argument.
		edit  func(b *Bundle) string
		wants func(b *Bundle) []string
	}{
		{"missing bundle dir", func(b *Bundle) string { return filepath.Join(b.Dir, "nope") },
			func(b *Bundle) []string {
				return []string{"bundle " + filepath.Join(b.Dir, "nope") + ": no such directory"}
			}},
		{"bundle is a file", func(b *Bundle) string { return filepath.Join(b.Dir, "config.json") },
			func(b *Bundle) []string {
				return []string{"bundle " + filepath.Join(b.Dir, "config.json") + ": not a directory"}
			}},
		{"no config.json", func(b *Bundle) string { os.Remove(filepath.Join(b.Dir, "config.json")); return b.Dir },
			func(b *Bundle) []string {
				return []string{filepath.Join(b.Dir, "config.json") + ": no such file", "nucleus spec"}
			}},
		{"config not JSON", func(b *Bundle) string {
			os.WriteFile(filepath.Join(b.Dir, "config.json"), []byte("{\n  \"ociVersion\": \"1.0.0\",\n  oops\n}"), 0o644)
			return b.Dir
		}, func(b *Bundle) []string {
			return []string{filepath.Join(b.Dir, "config.json") + ": invalid JSON at line 3, column 3"}
		}},
		{"empty config", func(b *Bundle) string { os.WriteFile(filepath.Join(b.Dir, "config.json"), nil, 0o644); return b.Dir },
			func(b *Bundle) []string { return []string{filepath.Join(b.Dir, "config.json") + ": empty file"} }},
		{"no process.args", func(b *Bundle) string { b.Spec.Process.Args = nil; b.Save(t); return b.Dir },
			func(b *Bundle) []string {
				return []string{filepath.Join(b.Dir, "config.json") + ": process.args: must not be empty"}
			}},
		{"args is a string", func(b *Bundle) string {
			rewriteConfig(t, b, func(m map[string]any) { m["process"].(map[string]any)["args"] = "sh" })
			return b.Dir
		}, func(b *Bundle) []string {
			return []string{filepath.Join(b.Dir, "config.json") + ": process.args: expected an array of strings, got JSON string"}
		}},
		{"memory limit is a string", func(b *Bundle) string {
			rewriteConfig(t, b, func(m map[string]any) {
				m["linux"].(map[string]any)["resources"] = map[string]any{"memory": map[string]any{"limit": "64M"}}
			})
			return b.Dir
		}, func(b *Bundle) []string {
			return []string{filepath.Join(b.Dir, "config.json") + ": linux.resources.memory.limit: expected an integer, got JSON string"}
		}},
		{"no process", func(b *Bundle) string { b.Spec.Process = nil; b.Save(t); return b.Dir },
			func(b *Bundle) []string {
				return []string{filepath.Join(b.Dir, "config.json") + ": process: must be set"}
			}},
		{"rootfs missing", func(b *Bundle) string { os.RemoveAll(b.Rootfs); return b.Dir },
			func(b *Bundle) []string {
				return []string{filepath.Join(b.Dir, "config.json") + ": root.path: " + b.Rootfs + ": no such directory"}
			}},
		{"relative cwd", func(b *Bundle) string { b.Spec.Process.Cwd = "tmp"; b.Save(t); return b.Dir },
			func(b *Bundle) []string {
				return []string{filepath.Join(b.Dir, "config.json") + `: process.cwd: "tmp" is not an absolute path`}
			}},
		{"executable missing in rootfs", func(b *Bundle) string {
			b.Spec.Process.Args = []string{"/bin/no-such-program"}
			b.Save(t)
			return b.Dir
		},
			func(b *Bundle) []string {
				return []string{`"/bin/no-such-program"`, "no such file or directory"}
			}},
		{"executable not on PATH", func(b *Bundle) string { b.Spec.Process.Args = []string{"no-such-program"}; b.Save(t); return b.Dir },
			func(b *Bundle) []string {
				return []string{`"no-such-program"`, "not found"}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := r.coreFor(t)
			b := newBundle(t, "true")
			bundleArg := tc.edit(b)
			wants := tc.wants(b)
			for _, cmd := range [][]string{{"create"}, {"run"}, {"run", "-d"}} {
				id := coreID(t, r, "bad")
				args := append(append(cmd, "--bundle", bundleArg), id)
				r.Fail(wants, args...)
				assertNoLeftovers(t, r.Root, id, b.Dir)
				r.Fail([]string{"container " + id, "does not exist"}, "state", id)
			}
		})
	}
	if res := r.OK("list", "-q"); strings.TrimSpace(res.Stdout) != "" {
		t.Errorf("list after failed creates: %q", res.Stdout)
	}
}

// rewriteConfig edits config.json as a generic JSON object, for configs the
// typed spec cannot express.
func rewriteConfig(t *testing.T, b *Bundle, edit func(map[string]any)) {
	t.Helper()
	file := filepath.Join(b.Dir, "config.json")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	data, _ = json.Marshal(m)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCoreUnknownID(t *testing.T) {
	r := newRunner(t)
	id := "core-unknown-id"
	for _, args := range [][]string{
		{"state", id}, {"start", id}, {"kill", id}, {"kill", id, "KILL"}, {"kill", "--all", id, "KILL"},
		{"delete", id}, {"pause", id}, {"resume", id}, {"ps", id}, {"ps", "--format", "json", id},
		{"exec", id, "true"},
	} {
		r.Fail([]string{"container " + id, "does not exist"}, args...)
	}
	assertNoLeftovers(t, r.Root, id, "")
}

func TestCoreInvalidIDs(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "true")
	long := strings.Repeat("c", 300)
	for _, tc := range []struct{ id, want string }{
		{"a/b", `invalid container id "a/b": character '/' not allowed`},
		{"../core-x", `invalid container id "../core-x"`},
		{"..", `invalid container id ".."`},
		{".", `invalid container id "."`},
		{"", "container id cannot be empty"},
		{long, "longer than 255 characters"},
		{"core x", `character ' ' not allowed`},
	} {
		for _, args := range [][]string{
			{"create", "--bundle", b.Dir, tc.id}, {"run", "--bundle", b.Dir, tc.id}, {"run", "-d", "--bundle", b.Dir, tc.id},
			{"state", tc.id}, {"start", tc.id}, {"kill", tc.id, "KILL"}, {"delete", tc.id}, {"delete", "--force", tc.id},
			{"pause", tc.id}, {"resume", tc.id}, {"ps", tc.id}, {"exec", tc.id, "true"},
		} {
			res := r.Fail([]string{tc.want}, args...)
			if len(res.Stderr) > 200 {
				t.Errorf("nucleus %s: the error repeats the whole id: %q", args[0], res.Stderr)
			}
		}
	}
	// Nothing was created anywhere: the root is empty and no cgroup or
	// directory was made from a hostile id.
	entries, _ := os.ReadDir(r.Root)
	if len(entries) != 0 {
		t.Errorf("root holds %d entries after invalid ids", len(entries))
	}
	for _, id := range []string{"a", "b", "core-x", long[:255]} {
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(r.Root), "core-x")); err == nil {
		t.Errorf("../core-x escaped the root")
	}
}

func TestCoreBadSignal(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	id := coreID(t, r, "badsig")
	r.coreDetached("create", "--bundle", b.Dir, id)
	for _, sig := range []string{"BOGUS", "SIGFOO", "65", "99999999999999999999", "-9", "9x"} {
		r.Fail([]string{"invalid signal"}, "kill", id, sig)
		r.Fail([]string{"invalid signal"}, "kill", "--all", id, sig)
	}
	if st := r.State(id); st["status"] != "created" {
		t.Errorf("bad kills changed the container: %v", st)
	}
	r.OK("delete", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestCoreLogJSON: with --log FILE --log-format json an error is a JSON log
// line (level error, a msg a user understands), as containerd's shim reads
// it, and still one line on stderr.
func TestCoreLogJSON(t *testing.T) {
	r := newRunner(t)
	logFile := filepath.Join(t.TempDir(), "log.json")
	r.Global = []string{"--log", logFile, "--log-format", "json"}
	b := newBundle(t, "true")
	b.Spec.Process.Args = nil
	b.Save(t)
	id := coreID(t, r, "log")

	r.Fail([]string{"process.args: must not be empty"}, "create", "--bundle", b.Dir, id)
	r.Fail([]string{"container core-nope", "does not exist"}, "state", "core-nope")
	assertNoLeftovers(t, r.Root, id, b.Dir)
	// An error from inside the container's init is reported the same way.
	b.Spec.Process.Args = []string{"/bin/no-such-program"}
	b.Save(t)
	r.Fail([]string{`"/bin/no-such-program"`}, "run", "--bundle", b.Dir, id)
	assertNoLeftovers(t, r.Root, id, b.Dir)

	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 {
		t.Fatalf("log has %d lines, want 3: %q", len(lines), data)
	}
	for i, want := range []string{
		filepath.Join(b.Dir, "config.json") + ": process.args: must not be empty",
		"container core-nope: container does not exist",
		`exec: "/bin/no-such-program": stat /bin/no-such-program: no such file or directory`,
	} {
		var entry map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &entry); err != nil {
			t.Fatalf("log line %d is not JSON: %v: %q", i, err, lines[i])
		}
		msg, _ := entry["msg"].(string)
		if entry["level"] != "error" || !strings.HasSuffix(msg, want) || entry["time"] == nil {
			t.Errorf("log line %d: %v, want level error, msg %q and a time", i, entry, want)
		}
	}

	// JSON without --log: the error is a JSON line on stderr.
	r.Global = []string{"--log-format", "json"}
	res := r.Fail(nil, "state", "core-nope")
	var entry map[string]any
	if err := json.Unmarshal([]byte(res.Stderr), &entry); err != nil || entry["level"] != "error" ||
		entry["msg"] != "container core-nope: container does not exist" {
		t.Errorf("--log-format json error on stderr: %q (%v)", res.Stderr, err)
	}

	r.Global = []string{"--log-format", "yaml"}
	r.Fail([]string{`--log-format "yaml": want text or json`}, "list")
	r.Global = []string{"--log", filepath.Join(t.TempDir(), "no", "such", "dir", "log")}
	r.Fail([]string{"--log " + r.Global[1]}, "list")
}

func TestCoreSystemdCgroupWithoutSystemd(t *testing.T) {
	if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
		t.Skip("systemd runs on this host; --systemd-cgroup is usable here")
	}
	r := newRunner(t)
	b := newBundle(t, "true")
	id := coreID(t, r, "systemd")
	r.Global = []string{"--systemd-cgroup"}
	for _, cmd := range [][]string{{"run", "--bundle", b.Dir, id}, {"create", "--bundle", b.Dir, id}, {"state", id}} {
		r.Fail([]string{"--systemd-cgroup: systemd is not running on this host", "drop the flag"}, cmd...)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestCoreCreateExisting: create or run of an id in use is a clear error
// and does not disturb the container that has it.
func TestCoreCreateExisting(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	mem := int64(64 << 20)
	b.Spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem}}
	b.Save(t)
	id := coreID(t, r, "dup")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	before := r.State(id)
	pid := r.corePid(id)
	memFile := cgroupFile(id, "memory", "memory.limit_in_bytes", "memory.max")

	other := newBundle(t, "true")
	smaller := int64(32 << 20)
	other.Spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &smaller}}
	other.Save(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	for _, cmd := range [][]string{
		{"create", "--pid-file", pidFile, "--bundle", other.Dir, id},
		{"run", "--bundle", other.Dir, id},
		{"run", "-d", "--bundle", other.Dir, id},
	} {
		r.Fail([]string{"container " + id + " already exists under " + r.Root}, cmd...)
	}
	after := r.State(id)
	for _, k := range []string{"pid", "status", "bundle", "created"} {
		if before[k] != after[k] {
			t.Errorf("state %s changed from %v to %v", k, before[k], after[k])
		}
	}
	if !alive(pid) || readTrim(memFile) != "67108864" {
		t.Errorf("existing container disturbed: alive %v, %s = %q", alive(pid), memFile, readTrim(memFile))
	}
	if _, err := os.Stat(pidFile); err == nil {
		t.Errorf("a failed create wrote its pid file")
	}
	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

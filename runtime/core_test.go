package runtime

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	for raw, want := range map[string]unix.Signal{
		"KILL":     unix.SIGKILL,
		"SIGKILL":  unix.SIGKILL,
		"kill":     unix.SIGKILL,
		"sigkill":  unix.SIGKILL,
		"9":        unix.SIGKILL,
		"TERM":     unix.SIGTERM,
		"term":     unix.SIGTERM,
		"SIGTERM":  unix.SIGTERM,
		"SigTerm":  unix.SIGTERM,
		"15":       unix.SIGTERM,
		"HUP":      unix.SIGHUP,
		"SIGUSR1":  unix.SIGUSR1,
		"usr2":     unix.SIGUSR2,
		"STOP":     unix.SIGSTOP,
		"WINCH":    unix.SIGWINCH,
		"1":        unix.SIGHUP,
		"64":       unix.Signal(64),
		"34":       unix.Signal(34),
		"SIGCHLD":  unix.SIGCHLD,
		"SIGPWR":   unix.SIGPWR,
		"sigalrm":  unix.SIGALRM,
		"SIGWINCH": unix.SIGWINCH,
	} {
		got, err := ParseSignal(raw)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", raw, got, err, want)
		}
	}
}

func TestParseSignalRejects(t *testing.T) {
	for raw, want := range map[string]string{
		"":         `invalid signal "": unknown name`,
		"BOGUS":    `invalid signal "BOGUS": unknown name`,
		"SIGBOGUS": `invalid signal "SIGBOGUS": unknown name`,
		"SIG":      `invalid signal "SIG": unknown name`,
		"0":        `invalid signal "0": number out of range 1-64`,
		"65":       `invalid signal "65": number out of range 1-64`,
		"-9":       `invalid signal "-9": number out of range 1-64`,
		"9x":       `invalid signal "9x": unknown name`,
		"K ILL":    `invalid signal "K ILL": unknown name`,
	} {
		got, err := ParseSignal(raw)
		if err == nil {
			t.Errorf("ParseSignal(%q) = %d, want an error", raw, got)
			continue
		}
		if err.Error() != want {
			t.Errorf("ParseSignal(%q) error %q, want %q", raw, err, want)
		}
	}
}

func TestParseUser(t *testing.T) {
	u32 := func(v uint32) *uint32 { return &v }
	for _, tc := range []struct {
		in  string
		uid uint32
		gid *uint32
	}{
		{"0", 0, nil},
		{"1000", 1000, nil},
		{"65534:65534", 65534, u32(65534)},
		{"0:0", 0, u32(0)},
		{"4294967295:4294967295", 1<<32 - 1, u32(1<<32 - 1)},
		{"007:010", 7, u32(10)},
	} {
		uid, gid, err := ParseUser(tc.in)
		if err != nil {
			t.Errorf("ParseUser(%q): %v", tc.in, err)
			continue
		}
		if uid != tc.uid || (gid == nil) != (tc.gid == nil) || (gid != nil && *gid != *tc.gid) {
			t.Errorf("ParseUser(%q) = %d, %v; want %d, %v", tc.in, uid, gid, tc.uid, tc.gid)
		}
	}
	for in, want := range map[string]string{
		"":                       `--user "": uid: empty`,
		":5":                     `--user ":5": uid: empty`,
		"5:":                     `--user "5:": gid: empty`,
		"root":                   `--user "root": uid: "root" is not a number`,
		"1000:users":             `--user "1000:users": gid: "users" is not a number`,
		"-1":                     `--user "-1": uid: "-1" is not a number`,
		"4294967296":             `--user "4294967296": uid: "4294967296" out of range`,
		"1:99999999999999999999": `--user "1:99999999999999999999": gid: "99999999999999999999" out of range`,
		"1:2:3":                  `--user "1:2:3": gid: "2:3" is not a number`,
		" 1":                     `--user " 1": uid: " 1" is not a number`,
	} {
		uid, gid, err := ParseUser(in)
		if err == nil {
			t.Errorf("ParseUser(%q) = %d, %v; want an error", in, uid, gid)
			continue
		}
		if err.Error() != want {
			t.Errorf("ParseUser(%q) error %q, want %q", in, err, want)
		}
	}
}

func TestParseSubCgroupPaths(t *testing.T) {
	got, err := parseSubCgroupPaths(nil)
	if err != nil || got != nil {
		t.Errorf("parseSubCgroupPaths(nil) = %v, %v", got, err)
	}
	got, err = parseSubCgroupPaths([]string{"sub"})
	if err != nil || len(got) != 1 || got[""] != "sub" {
		t.Errorf("parseSubCgroupPaths([sub]) = %v, %v", got, err)
	}
	got, err = parseSubCgroupPaths([]string{"cpu,memory:a", "pids:b"})
	if err != nil || len(got) != 3 || got["cpu"] != "a" || got["memory"] != "a" || got["pids"] != "b" {
		t.Errorf("parseSubCgroupPaths(cpu,memory:a pids:b) = %v, %v", got, err)
	}
	for _, args := range [][]string{
		{"cpu:a", "cpu:b"},
		{",cpu:a"},
		{"a", "b"},
	} {
		if got, err := parseSubCgroupPaths(args); err == nil {
			t.Errorf("parseSubCgroupPaths(%q) = %v, want an error", args, got)
		} else if !strings.HasPrefix(err.Error(), "--cgroup") {
			t.Errorf("parseSubCgroupPaths(%q) error %q does not name the flag", args, err)
		}
	}
}

func TestCheckTerminal(t *testing.T) {
	for _, tc := range []struct {
		terminal, detach bool
		socket           string
		want             string
	}{
		{false, false, "", ""},
		{false, true, "", ""},
		{true, false, "", ""},
		{true, true, "/s", ""},
		{true, true, "", "pass --console-socket"},
		{false, true, "/s", "--console-socket needs process.terminal true"},
		{true, false, "/s", "--console-socket needs process.terminal true and a detached container"},
	} {
		err := checkTerminal(tc.terminal, tc.detach, tc.socket)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("checkTerminal(%v, %v, %q) = %v, want nil", tc.terminal, tc.detach, tc.socket, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("checkTerminal(%v, %v, %q) = %v, want %q", tc.terminal, tc.detach, tc.socket, err, tc.want)
		}
	}
}

func TestNewRuntime(t *testing.T) {
	if _, err := New("/", false, "auto"); err == nil || err.Error() != "--root must not be /" {
		t.Errorf("New(/) = %v", err)
	}
	if _, err := New("/tmp/x", false, "maybe"); err == nil || err.Error() != `--rootless "maybe": want true, false or auto` {
		t.Errorf("New(rootless maybe) = %v", err)
	}
	r, err := New("", false, "")
	if err != nil || r.Root != DefaultRoot {
		t.Errorf("New(\"\") = %+v, %v; want root %s", r, err, DefaultRoot)
	}
	r, err = New("rel/dir", false, "false")
	if err != nil || !filepath.IsAbs(r.Root) || !strings.HasSuffix(r.Root, "/rel/dir") {
		t.Errorf("New(rel/dir) = %+v, %v; want an absolute root", r, err)
	}
	if r.rootlessCgroups() {
		t.Errorf("--rootless false: rootlessCgroups() = true")
	}
	r, _ = New("/x", false, "true")
	if !r.rootlessCgroups() {
		t.Errorf("--rootless true: rootlessCgroups() = false")
	}
	if !systemdRunning() {
		_, err := New("/x", true, "auto")
		if err == nil || !strings.Contains(err.Error(), "--systemd-cgroup: systemd is not running") {
			t.Errorf("New(systemd, without systemd) = %v", err)
		}
	}
}

// Commands that take an id reject a malformed one before touching the
// filesystem, so `delete --force ../x` can neither succeed silently nor
// reach outside --root.
func TestInvalidIDsRejected(t *testing.T) {
	r, err := New(t.TempDir(), false, "auto")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", ".", "..", "a/b", "../x", strings.Repeat("z", 300)} {
		calls := map[string]error{
			"delete":         r.Delete(id, false),
			"delete --force": r.Delete(id, true),
			"pause":          r.Pause(id),
			"resume":         r.Resume(id),
			"start":          r.Start(id),
			"kill":           r.Kill(id, unix.SIGKILL, false),
		}
		_, calls["state"] = r.State(id)
		_, calls["ps"] = r.Processes(id)
		_, calls["exec"] = r.Exec(id, ExecOptions{Args: []string{"true"}})
		for name, err := range calls {
			if err == nil {
				t.Errorf("%s %q: no error", name, id)
				continue
			}
			if errors.Is(err, ErrNotExist) || !strings.Contains(err.Error(), "container id") {
				t.Errorf("%s %q: %q, want an invalid-id error", name, id, err)
			}
		}
	}
	// A well-formed id that does not exist is ErrNotExist, except for a
	// forced delete, which succeeds.
	for name, err := range map[string]error{
		"delete": r.Delete("core-none", false),
		"pause":  r.Pause("core-none"),
		"resume": r.Resume("core-none"),
		"start":  r.Start("core-none"),
		"kill":   r.Kill("core-none", unix.SIGTERM, false),
	} {
		if !errors.Is(err, ErrNotExist) {
			t.Errorf("%s core-none: %v, want ErrNotExist", name, err)
		}
	}
	if err := r.Delete("core-none", true); err != nil {
		t.Errorf("delete --force core-none: %v", err)
	}
}

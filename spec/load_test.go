package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// testBundle writes s (or the default config) into a fresh bundle dir with
// an empty rootfs/ and returns the dir and the config path.
func testBundle(t *testing.T, s *specs.Spec) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if s == nil {
		s = Default(false)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, ConfigName)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// wantFieldError checks that err is a one-line *FieldError naming file and
// field, whose message contains every one of wants.
func wantFieldError(t *testing.T, err error, file, field string, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil, want an error on %s field %q", file, field)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got %T %q, want a *FieldError", err, err)
	}
	if fe.File != file {
		t.Errorf("error names file %q, want %q (%s)", fe.File, file, err)
	}
	if fe.Field != field {
		t.Errorf("error names field %q, want %q (%s)", fe.Field, field, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, file+": ") {
		t.Errorf("message %q does not start with the file name", msg)
	}
	if field != "" && !strings.Contains(msg, ": "+field+": ") {
		t.Errorf("message %q does not name the field %s", msg, field)
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not contain %q", msg, w)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message is not one line: %q", msg)
	}
}

func TestDefaultIsValid(t *testing.T) {
	for _, rootless := range []bool{false, true} {
		s := Default(rootless)
		dir, file := testBundle(t, s)
		if err := Validate(file, dir, s); err != nil {
			t.Errorf("Default(%v) does not validate: %v", rootless, err)
		}
		loaded, err := Load(dir)
		if err != nil {
			t.Fatalf("Load of Default(%v): %v", rootless, err)
		}
		if len(loaded.Process.Args) == 0 || loaded.Root.Path != "rootfs" {
			t.Errorf("Default(%v) loaded as args %v root %v", rootless, loaded.Process.Args, loaded.Root)
		}
	}
	if s := Default(true); !hasNamespace(s, specs.UserNamespace) || len(s.Linux.UIDMappings) == 0 {
		t.Errorf("Default(true) has no user namespace with uid mappings")
	}
}

func TestLoadBundleErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := Load(missing)
	if err == nil || err.Error() != "bundle "+missing+": no such directory" {
		t.Errorf("Load(missing dir) = %v", err)
	}

	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	_, err = Load(notDir)
	if err == nil || err.Error() != "bundle "+notDir+": not a directory" {
		t.Errorf("Load(file) = %v", err)
	}

	empty := t.TempDir()
	_, err = Load(empty)
	wantFieldError(t, err, filepath.Join(empty, ConfigName), "", "no such file", "nucleus spec")

	// A relative bundle path is reported as the absolute config path.
	dir, file := testBundle(t, nil)
	os.WriteFile(file, []byte("{not json"), 0o644)
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	if err := os.Chdir(filepath.Dir(dir)); err != nil {
		t.Fatal(err)
	}
	_, err = Load(filepath.Base(dir))
	wantFieldError(t, err, file, "", "invalid JSON at line 1, column 2")
}

func TestParseErrors(t *testing.T) {
	const file = "/b/config.json"
	for _, tc := range []struct {
		name, data, field string
		wants             []string
	}{
		{"empty", "", "", []string{"empty file"}},
		{"blank", " \n\t", "", []string{"empty file"}},
		{"not JSON", "hello", "", []string{"invalid JSON at line 1, column 1"}},
		{"truncated", "{\"ociVersion\": \"1.0.0\",\n \"process\": {", "", []string{"invalid JSON at line 2, column 14", "unexpected end of JSON input"}},
		{"syntax on line 3", "{\n\"ociVersion\": \"1.0.0\",\n  \"root\" {}}", "", []string{"invalid JSON at line 3, column 10"}},
		{"trailing garbage", `{"ociVersion":"1.0.0"} x`, "", []string{"invalid JSON at line 1, column 24"}},
		{"args is a string", `{"process": {"args": "sh"}}`, "process.args", []string{"expected an array of strings, got JSON string"}},
		{"args element is a number", `{"process": {"args": [1]}}`, "process.args", []string{"expected a string, got JSON number"}},
		{"cwd is a number", `{"process": {"cwd": 5}}`, "process.cwd", []string{"got JSON number"}},
		{"process is a string", `{"process": "sh"}`, "process", []string{"expected an object, got JSON string"}},
		{"terminal is a string", `{"process": {"terminal": "yes"}}`, "process.terminal", []string{"expected a boolean, got JSON string"}},
		{"uids are strings", `{"process": {"user": {"additionalGids": ["5"]}}}`, "process.user.additionalGids", []string{"expected a non-negative integer, got JSON string"}},
		{"mounts is an object", `{"mounts": {}}`, "mounts", []string{"expected an array of objects, got JSON object"}},
		{"uid negative", `{"process": {"user": {"uid": -1}}}`, "process.user.uid", []string{"expected a non-negative integer, got JSON number -1"}},
		{"memory limit is a string", `{"linux": {"resources": {"memory": {"limit": "1G"}}}}`, "linux.resources.memory.limit", []string{"expected an integer, got JSON string"}},
		{"top level array", `[]`, "(top level)", []string{"expected an object, got JSON array"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(file, []byte(tc.data))
			if s != nil {
				t.Errorf("Parse returned a spec along with the error")
			}
			wantFieldError(t, err, file, tc.field, tc.wants...)
		})
	}
	s, err := Parse(file, []byte(`{"ociVersion": "1.0.2", "process": {"args": ["sh"]}}`))
	if err != nil || s.Version != "1.0.2" || s.Process.Args[0] != "sh" {
		t.Errorf("Parse(valid) = %+v, %v", s, err)
	}
}

func TestValidateErrors(t *testing.T) {
	neg := int64(-2)
	for _, tc := range []struct {
		name  string
		edit  func(s *specs.Spec, dir string)
		field string
		wants []string
	}{
		{"no ociVersion", func(s *specs.Spec, _ string) { s.Version = "" }, "ociVersion", []string{"must be set"}},
		{"ociVersion 2", func(s *specs.Spec, _ string) { s.Version = "2.0.0" }, "ociVersion", []string{`unsupported version "2.0.0"`}},
		{"no root", func(s *specs.Spec, _ string) { s.Root = nil }, "root.path", []string{"must be set"}},
		{"rootfs missing", func(s *specs.Spec, _ string) { s.Root.Path = "gone" }, "root.path", []string{"gone: no such directory"}},
		{"rootfs is a file", func(s *specs.Spec, dir string) {
			os.WriteFile(filepath.Join(dir, "afile"), nil, 0o644)
			s.Root.Path = filepath.Join(dir, "afile")
		}, "root.path", []string{"afile: not a directory"}},
		{"no process", func(s *specs.Spec, _ string) { s.Process = nil }, "process", []string{"must be set"}},
		{"no args", func(s *specs.Spec, _ string) { s.Process.Args = nil }, "process.args", []string{"must not be empty"}},
		{"empty args[0]", func(s *specs.Spec, _ string) { s.Process.Args = []string{""} }, "process.args[0]", []string{"must not be empty"}},
		{"no cwd", func(s *specs.Spec, _ string) { s.Process.Cwd = "" }, "process.cwd", []string{"must be set"}},
		{"relative cwd", func(s *specs.Spec, _ string) { s.Process.Cwd = "tmp" }, "process.cwd", []string{`"tmp" is not an absolute path`}},
		{"env without =", func(s *specs.Spec, _ string) { s.Process.Env = append(s.Process.Env, "NOVALUE") }, "process.env[2]", []string{`"NOVALUE" is not KEY=VALUE`}},
		{"unknown rlimit", func(s *specs.Spec, _ string) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_BOGUS"})
		}, "process.rlimits[1].type", []string{`unknown rlimit "RLIMIT_BOGUS"`}},
		{"soft above hard", func(s *specs.Spec, _ string) {
			s.Process.Rlimits[0].Soft = s.Process.Rlimits[0].Hard + 1
		}, "process.rlimits[0]", []string{"soft limit 1025 above hard limit 1024"}},
		{"not a capability", func(s *specs.Spec, _ string) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_KILL", "CAP_TEST"}}
		}, "process.capabilities.bounding[2]", []string{`"CAP_TEST": not a capability`}},
		{"capability in lower case", func(s *specs.Spec, _ string) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Ambient: []string{"cap_net_raw"}}
		}, "process.capabilities.ambient[0]", []string{`"cap_net_raw": not a capability (did you mean "CAP_NET_RAW"?)`}},
		{"capability without CAP_", func(s *specs.Spec, _ string) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Effective: []string{"CAP_KILL", "SYS_ADMIN"}}
		}, "process.capabilities.effective[1]", []string{`"SYS_ADMIN": not a capability (did you mean "CAP_SYS_ADMIN"?)`}},
		{"mount without destination", func(s *specs.Spec, _ string) { s.Mounts[2].Destination = "" }, "mounts[2].destination", []string{"must be set"}},
		{"unknown namespace", func(s *specs.Spec, _ string) { s.Linux.Namespaces[1].Type = "bogus" }, "linux.namespaces[1].type", []string{`unknown namespace type "bogus"`}},
		{"namespace twice", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, "linux.namespaces[N].type", []string{`namespace "pid" listed twice`}},
		{"memory limit", func(s *specs.Spec, _ string) {
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &neg}}
		}, "linux.resources.memory.limit", []string{"got -2"}},
		{"pids limit", func(s *specs.Spec, _ string) {
			s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &neg}}
		}, "linux.resources.pids.limit", []string{"got -2"}},
		{"hostname without uts", func(s *specs.Spec, _ string) {
			var kept []specs.LinuxNamespace
			for _, ns := range s.Linux.Namespaces {
				if ns.Type != specs.UTSNamespace {
					kept = append(kept, ns)
				}
			}
			s.Linux.Namespaces = kept
		}, "hostname", []string{"no uts namespace"}},
		{"hostname without a linux section", func(s *specs.Spec, _ string) { s.Linux = nil }, "hostname", []string{"no uts namespace"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Default(false)
			// The test relies on the default's shape; fail loudly if it changes.
			if len(s.Process.Env) != 2 || len(s.Process.Rlimits) != 1 || len(s.Mounts) < 3 || len(s.Linux.Namespaces) < 2 {
				t.Fatalf("Default() changed shape: env %d rlimits %d mounts %d namespaces %d",
					len(s.Process.Env), len(s.Process.Rlimits), len(s.Mounts), len(s.Linux.Namespaces))
			}
			dir, file := testBundle(t, nil)
			// Default has a cgroup namespace only on cgroup v2 hosts; the
			// duplicate is appended after however many there are.
			field := strings.Replace(tc.field, "[N]", fmt.Sprintf("[%d]", len(s.Linux.Namespaces)), 1)
			tc.edit(s, dir)
			wantFieldError(t, Validate(file, dir, s), file, field, tc.wants...)
			// Load, reading the same config from disk, gives the same error.
			data, _ := json.Marshal(s)
			os.WriteFile(file, data, 0o644)
			_, err := Load(dir)
			wantFieldError(t, err, file, field, tc.wants...)
		})
	}
}

func TestValidateAcceptsLimitsAndAbsoluteRoot(t *testing.T) {
	unlimited, limit := int64(-1), int64(64<<20)
	s := Default(false)
	dir, file := testBundle(t, s)
	s.Root.Path = filepath.Join(dir, "rootfs")
	s.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &limit},
		Pids:   &specs.LinuxPids{Limit: &unlimited},
	}
	if err := Validate(file, "/elsewhere", s); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadProcess(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "process.json")

	_, err := LoadProcess(file)
	if err == nil || !strings.Contains(err.Error(), "read process file "+file) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("LoadProcess(missing) = %v", err)
	}

	os.WriteFile(file, []byte(`{"args": "sh", "cwd": "/"}`), 0o644)
	_, err = LoadProcess(file)
	wantFieldError(t, err, file, "args", "expected an array of strings, got JSON string")

	os.WriteFile(file, []byte(`{"args": [], "cwd": "/"}`), 0o644)
	_, err = LoadProcess(file)
	wantFieldError(t, err, file, "args", "must not be empty")

	os.WriteFile(file, []byte(`{"args": ["sh"], "cwd": "rel"}`), 0o644)
	_, err = LoadProcess(file)
	wantFieldError(t, err, file, "cwd", "not an absolute path")

	os.WriteFile(file, []byte(`{"args": ["sh", "-c", "true"], "cwd": "/tmp", "env": ["A=b"], "user": {"uid": 65534, "gid": 65534}}`), 0o644)
	p, err := LoadProcess(file)
	if err != nil {
		t.Fatalf("LoadProcess(valid): %v", err)
	}
	if p.Cwd != "/tmp" || len(p.Args) != 3 || p.User.UID != 65534 || p.Env[0] != "A=b" {
		t.Errorf("LoadProcess(valid) = %+v", p)
	}
}

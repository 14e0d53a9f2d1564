package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A config.json and a container id are user input: loading and validating
// them must reject anything bad with one line that names the file and the
// field, and never panic.

func FuzzLoad(f *testing.F) {
	good, _ := json.Marshal(Default(false))
	f.Add(good)
	for _, s := range []string{
		"", "null", "{}", "[]", `{"ociVersion":"1.0.2"}`, `{"ociVersion":"2"}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":null}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":[""],"cwd":"/"}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":2,"hard":1}]}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"},"linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"},"linux":{"resources":{"memory":{"limit":-5}}}}`,
		`{"ociVersion":"1.0.2","root":{"path":"a\nb"},"process":{"args":["sh"],"cwd":"/"}}`,
		`{"ociVersion":"1.0.2","mounts":[{"destination":""}]}`, `{"process":{"args":"sh"}}`, `{"linux":{"uidMappings":[{"size":-1}]}}`,
		"{\"ociVersion\":\"1.0.2\",\n\"root\":", `{"ociVersion":1}`,
	} {
		f.Add([]byte(s))
	}
	bundle := f.TempDir()
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		f.Fatal(err)
	}
	file := filepath.Join(bundle, ConfigName)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := LoadData(bundle, data)
		if err == nil {
			if s == nil || s.Process == nil || s.Root == nil || len(s.Process.Args) == 0 {
				t.Fatalf("LoadData(%q) accepted a config without what a runtime needs: %+v", data, s)
			}
			return
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("LoadData(%q): error is not one line: %q", data, msg)
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.File != file || !strings.HasPrefix(msg, file+": ") {
			t.Errorf("LoadData(%q): error %q does not name %s", data, msg, file)
		}
	})
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"c1", "", ".", "..", "../x", "a/b", "a b", "@sandbox-x", strings.Repeat("a", 256), "ok.id_+-", "é", "a\x00b", "a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateID(id)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "container id") {
				t.Errorf("ValidateID(%q): error %q: want one line about the container id", id, msg)
			}
			return
		}
		// An accepted id is one path element under the root, never a
		// runtime's own name (@...), and fits a directory name.
		if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00\n@ ") || filepath.Base(id) != id || len(id) > MaxIDLength {
			t.Errorf("ValidateID accepted %q", id)
		}
	})
}

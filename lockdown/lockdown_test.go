package lockdown

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRequire(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "lockdown")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		file string
		want Level
		ok   bool
	}{
		{"[none] integrity confidentiality\n", Integrity, false},
		{"none [integrity] confidentiality\n", Integrity, true},
		{"none [integrity] confidentiality\n", Confidentiality, false},
		{"none integrity [confidentiality]\n", Confidentiality, true},
		{"none integrity [confidentiality]\n", Integrity, true},
		{"garbage\n", Integrity, false},
	} {
		err := Require(write(c.file), c.want)
		if (err == nil) != c.ok {
			t.Errorf("%q want %s: err %v", c.file, c.want, err)
		}
		if err != nil && !errors.Is(err, ErrNotMet) {
			t.Errorf("%q: %v is not ErrNotMet", c.file, err)
		}
	}
	err := Require(filepath.Join(dir, "absent"), Integrity)
	if !errors.Is(err, ErrNotMet) || !strings.Contains(err.Error(), "no lockdown LSM") || !strings.Contains(err.Error(), "require-lockdown") {
		t.Errorf("absent file: %v", err)
	}
	if _, err := Parse("none"); err == nil {
		t.Error("Parse(none) passed")
	}
}

package secrets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nucleus-run/nucleus/opterr"
)

func TestParseSource(t *testing.T) {
	for _, c := range []struct {
		in       string
		from, nm string
		bad      string
	}{
		{in: "/etc/pw:db", from: "/etc/pw", nm: "db"},
		{in: "env:TOKEN:api", from: "env:TOKEN", nm: "api"},
		{in: "C:/x:y", from: "C:/x", nm: "y"},
		{in: "nocolon", bad: "SRC:NAME"},
		{in: ":db", bad: "SRC:NAME"},
		{in: "/etc/pw:", bad: "SRC:NAME"},
		{in: "/etc/pw:..", bad: "plain file name"},
		{in: "/etc/pw:a/b", bad: "plain file name"},
		{in: "env::db", bad: "names no variable"},
	} {
		s, err := ParseSource(c.in)
		if c.bad != "" {
			var oe *opterr.Error
			if err == nil || !strings.Contains(err.Error(), c.bad) || !errors.As(err, &oe) || oe.Option != "secret" {
				t.Errorf("ParseSource(%q) = %+v, %v; want an error of option secret with %q", c.in, s, err, c.bad)
			}
			continue
		}
		if err != nil || s.From != c.from || s.Name != c.nm {
			t.Errorf("ParseSource(%q) = %+v, %v", c.in, s, err)
		}
	}
}

func TestLoadLimitAndZero(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("hunter2"), 0o600)
	t.Setenv("SV_SECRET_TEST", "from-env")
	set, err := Load([]Source{{From: small, Name: "a"}, {From: "env:SV_SECRET_TEST", Name: "b"}}, []EnvSource{{Name: "PW", Var: "SV_SECRET_TEST"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Env(); len(got) != 1 || got[0] != "PW=from-env" {
		t.Errorf("Env() = %q", got)
	}
	bufs := [][]byte{set.secrets[0].data, set.secrets[1].data, set.env[0].data}
	set.Zero()
	for _, b := range bufs {
		for _, c := range b {
			if c != 0 {
				t.Fatalf("Zero left %q", b)
			}
		}
	}
	// 255 pages fit beside the tmpfs's root; one byte more does not.
	fits := filepath.Join(dir, "fits")
	os.WriteFile(fits, make([]byte, Limit-pageSize), 0o600)
	if _, err := Load([]Source{{From: fits, Name: "f"}}, nil); err != nil {
		t.Errorf("a secret of %d bytes: %v", Limit-pageSize, err)
	}
	if _, err := Load([]Source{{From: fits, Name: "f"}, {From: small, Name: "s"}}, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit in all: %v, want ErrTooLarge", err)
	}
	if _, err := Load([]Source{{From: filepath.Join(dir, "missing"), Name: "m"}}, nil); !errors.Is(err, ErrSource) {
		t.Errorf("missing file: %v, want ErrSource", err)
	}
	if _, err := Load(nil, []EnvSource{{Name: "X", Var: "SV_SECRET_UNSET"}}); !errors.Is(err, ErrSource) {
		t.Errorf("unset variable: %v, want ErrSource", err)
	}
}

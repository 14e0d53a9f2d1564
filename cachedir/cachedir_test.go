package cachedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsure(t *testing.T) {
	base := t.TempDir()
	good := filepath.Join(base, "a", "b")
	if err := Ensure(good); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(good); st.Mode().Perm() != 0o700 {
		t.Errorf("new cache dir mode %v, want 0700", st.Mode().Perm())
	}
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	link := filepath.Join(base, "link")
	os.Symlink(good, link)
	for _, dir := range []string{open, link} {
		err := Ensure(dir)
		if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: %v, want ErrUnsafe naming the dir", dir, err)
		}
	}
	// Below a dir others can write to, the dir could be swapped.
	below := filepath.Join(open, "c")
	if err := Ensure(below); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), open) {
		t.Errorf("below a world-writable dir: %v", err)
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(base, "other")
		os.Mkdir(other, 0o700)
		os.Chown(other, 1000, 1000)
		if err := Ensure(other); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "uid 1000") {
			t.Errorf("dir of another user: %v", err)
		}
	}
}

func TestRootNeverTmp(t *testing.T) {
	t.Setenv("NUCLEUS_CACHE_DIR", "")
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	d, err := Root()
	if os.Geteuid() == 0 {
		if d != "/var/cache/nucleus" {
			t.Errorf("root: %q", d)
		}
		return
	}
	if err == nil {
		t.Errorf("no HOME: got %q, want an error", d)
	}
}

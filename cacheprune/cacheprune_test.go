package cacheprune

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nucleus-run/nucleus/cachedir"
	"github.com/nucleus-run/nucleus/nixbundle"
)

func write(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool { _, err := os.Lstat(path); return err == nil }

func TestPrune(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	legacy := filepath.Join(dir, strings.Repeat("ab", 32)+".json")
	write(t, legacy, 10)
	write(t, filepath.Join(dir, "runsc-features.cache"), 10)
	write(t, filepath.Join(dir, "bundle", "k1.json"), 100)
	write(t, filepath.Join(dir, "seccomp", "used.bpf"), 1000)
	write(t, filepath.Join(dir, "seccomp", "used.sha256"), 65)
	write(t, filepath.Join(dir, "seccomp", "old.bpf"), 2000)
	write(t, filepath.Join(dir, "seccomp", "old.sha256"), 65)
	write(t, filepath.Join(dir, "seccomp", ".tmp-123"), 7) // being written
	crashed := filepath.Join(dir, "seccomp", ".tmp-456")
	write(t, crashed, 5)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(crashed, old, old)
	busy := filepath.Join(dir, "sandbox", "aaaa")
	idle := filepath.Join(dir, "sandbox", "bbbb")
	write(t, filepath.Join(busy, "config.json"), 300)
	write(t, filepath.Join(idle, "config.json"), 400)
	write(t, filepath.Join(dir, "sandbox", ".bbbb.tmp-1", "config.json"), 50)
	outside := filepath.Join(t.TempDir(), "precious")
	write(t, outside, 1)
	os.Symlink(filepath.Dir(outside), filepath.Join(dir, "sandbox", "evil"))
	os.Symlink(outside, filepath.Join(dir, "bundle", "evil.json"))

	release, err := cachedir.Use(nixbundle.SandboxLock(busy))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{filepath.Join(dir, "seccomp", "used.bpf"): true}
	rep, err := Prune(Options{Dir: dir, SeccompInUse: used, NixStateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if n, c := rep.Freed(BundleCache); n != 110 || c != 3 {
		t.Errorf("bundle cache freed %d in %d, want 110 in 3 (legacy, k1, evil link)", n, c)
	}
	if n, c := rep.Freed(SeccompFilters); n != 2070 || c != 2 {
		t.Errorf("seccomp freed %d in %d, want 2070 in 2 (old, the crashed temp file)", n, c)
	}
	if n, c := rep.Freed(SandboxBundles); n != 450 || c != 2 {
		t.Errorf("sandbox freed %d in %d, want 450 in 2 (bbbb with its temp dir, evil link)", n, c)
	}
	for path, want := range map[string]bool{
		legacy: false, filepath.Join(dir, "runsc-features.cache"): true,
		busy: true, nixbundle.SandboxLock(busy): true, idle: false, filepath.Join(dir, "sandbox", ".bbbb.tmp-1"): false,
		filepath.Join(dir, "seccomp", "used.bpf"): true, filepath.Join(dir, "seccomp", "used.sha256"): true,
		filepath.Join(dir, "seccomp", "old.bpf"): false, filepath.Join(dir, "seccomp", ".tmp-123"): true,
		crashed: false, outside: true,
	} {
		if exists(path) != want {
			t.Errorf("%s: exists %v, want %v", path, !want, want)
		}
	}
	if len(rep.Kept) != 3 {
		t.Errorf("kept %+v, want the busy sandbox, the used filter, the temp file", rep.Kept)
	}

	// --all takes what is in use too, but not a file being written.
	release()
	if _, err := Prune(Options{Dir: dir, All: true, SeccompInUse: used, NixStateDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{busy, nixbundle.SandboxLock(busy), filepath.Join(dir, "seccomp", "used.bpf")} {
		if exists(p) {
			t.Errorf("--all left %s", p)
		}
	}
}

func TestPruneRefusesUnsafeDirs(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "open")
	write(t, filepath.Join(open, "bundle", "k.json"), 1)
	os.Chmod(open, 0o777)
	if _, err := Prune(Options{Dir: open}); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("world-writable cache dir: %v", err)
	}
	// A sub-dir that is a symlink to elsewhere is refused, not followed.
	dir := filepath.Join(base, "cache")
	os.MkdirAll(dir, 0o700)
	elsewhere := filepath.Join(base, "elsewhere")
	write(t, filepath.Join(elsewhere, "k.json"), 1)
	os.Symlink(elsewhere, filepath.Join(dir, "bundle"))
	if _, err := Prune(Options{Dir: dir}); err == nil {
		t.Errorf("bundle/ a symlink: no error")
	}
	if !exists(filepath.Join(elsewhere, "k.json")) {
		t.Errorf("prune followed the bundle/ symlink")
	}
	if exists(filepath.Join(open, "bundle", "k.json")) == false {
		t.Errorf("refused cache dir was changed")
	}
	// A missing cache dir frees nothing.
	rep, err := Prune(Options{Dir: filepath.Join(base, "none")})
	if n, _ := rep.Freed(""); err != nil || n != 0 {
		t.Errorf("missing cache dir: %v %d", err, n)
	}
}

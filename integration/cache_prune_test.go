package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-units"
)

// gcRootsFor lists the registered auto GC roots that name link.
func gcRootsFor(link string) []string {
	var found []string
	entries, _ := os.ReadDir("/nix/var/nix/gcroots/auto")
	for _, e := range entries {
		p := filepath.Join("/nix/var/nix/gcroots/auto", e.Name())
		if target, err := os.Readlink(p); err == nil && target == link {
			found = append(found, p)
		}
	}
	return found
}

func mustExist(t *testing.T, path string, want bool) {
	t.Helper()
	_, err := os.Lstat(path)
	if want && err != nil {
		t.Errorf("%s: %v, want it kept", path, err)
	}
	if !want && err == nil {
		t.Errorf("%s still there, want it removed", path)
	}
}

// freed parses prune's "freed SIZE in DIR" line.
func freed(t *testing.T, out string) int64 {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "freed "); ok {
			size, _, _ := strings.Cut(rest, " in ")
			n, err := units.FromHumanSize(size)
			if err != nil {
				t.Errorf("freed line %q: %v", l, err)
			}
			return n
		}
	}
	t.Errorf("prune output has no freed line:\n%s", out)
	return -1
}

// nucleus cache prune empties the cache dir but for what is in use (a
// running sandbox's bundle, the seccomp filter a container started with),
// unregisters the sandbox bundles' GC roots, and never follows a symlink
// out of the cache; --all removes what is in use too.
func TestNixCachePrune(t *testing.T) {
	r, _ := nixEnv(t)
	flake := nixFlakeCopy(t)
	cache := filepath.Join(t.TempDir(), "cache")
	t.Setenv("NUCLEUS_CACHE_DIR", cache)
	ref := "path:" + flake + "#agent-example"

	nixBundleDir := filepath.Join(t.TempDir(), "b")
	r.OK("bundle", ref, "-o", nixBundleDir)
	if e, _ := os.ReadDir(filepath.Join(cache, "bundle")); len(e) != 1 {
		t.Fatalf("bundle cache: %v, want one entry", e)
	}
	r.OK("sandbox", "--flake", ref, "--id", "nx-prune-a", "--", "true")
	sboxes, _ := filepath.Glob(filepath.Join(cache, "sandbox", "*[0-9a-f]"))
	if len(sboxes) != 1 {
		t.Fatalf("sandbox bundles: %v, want one", sboxes)
	}
	sbox := sboxes[0]
	if len(gcRootsFor(filepath.Join(sbox, "gcroot"))) != 1 {
		t.Fatalf("no GC root registered for %s/gcroot", sbox)
	}

	// A container started in agent mode uses a compiled filter.
	b := newBundle(t, "sleep", "60")
	r.coreDetached("run", "-d", "--mode", "agent", "--bundle", b.Dir, "nx-prune-c")
	defer r.Run(nil, "delete", "--force", "nx-prune-c")
	used, _ := filepath.Glob(filepath.Join(cache, "seccomp", "*.bpf"))
	if len(used) != 1 {
		t.Fatalf("seccomp cache: %v, want one program", used)
	}
	// An unused filter, and symlinks out of the cache (the attack: make
	// prune delete what they point to).
	os.WriteFile(filepath.Join(cache, "seccomp", "00112233445566778899aabbccddeeff.bpf"), make([]byte, 4096), 0o600)
	os.WriteFile(filepath.Join(cache, "seccomp", "00112233445566778899aabbccddeeff.sha256"), []byte("x\n"), 0o600)
	outside := t.TempDir()
	precious := filepath.Join(outside, "precious")
	os.WriteFile(precious, []byte("keep me"), 0o644)
	os.Symlink(precious, filepath.Join(cache, "bundle", "evil.json"))
	os.Symlink(outside, filepath.Join(cache, "sandbox", "evil"))
	os.Symlink(outside, filepath.Join(cache, "seccomp", "evil"))

	// A sandbox still running.
	running := r.Cmd("sandbox", "--flake", ref, "--id", "nx-prune-s", "--", "sleep", "60")
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { running.Wait(); close(exited) }()
	defer func() { running.Process.Kill(); <-exited; r.Run(nil, "delete", "--force", "nx-prune-s") }()
	for i := 0; ; i++ {
		if st := r.Run(nil, "state", "nx-prune-s"); st.Code == 0 && strings.Contains(st.Stdout, `"running"`) {
			break
		}
		if i == 100 {
			t.Fatal("sandbox nx-prune-s not running after 20s")
		}
		time.Sleep(200 * time.Millisecond)
	}

	res := r.OK("cache", "prune")
	for _, w := range []string{
		"kept " + sbox + " (", "): a running nucleus sandbox uses it",
		"kept " + strings.TrimSuffix(used[0], ".bpf") + " (", "): a container in the state root was started with it",
		"removed 2 bundle cache entries", "removed 1 sandbox bundles", "removed 2 seccomp filters",
	} {
		if !strings.Contains(res.Stdout, w) {
			t.Errorf("prune output lacks %q:\n%s", w, res.Stdout)
		}
	}
	if n := freed(t, res.Stdout); n < 4096 {
		t.Errorf("freed %d bytes, want at least the 4096 of the unused filter", n)
	}
	if e, _ := os.ReadDir(filepath.Join(cache, "bundle")); len(e) != 0 {
		t.Errorf("bundle cache not emptied: %v", e)
	}
	mustExist(t, sbox, true)
	mustExist(t, used[0], true)
	mustExist(t, filepath.Join(cache, "seccomp", "00112233445566778899aabbccddeeff.bpf"), false)
	for _, l := range []string{"bundle/evil.json", "sandbox/evil", "seccomp/evil"} {
		mustExist(t, filepath.Join(cache, l), false)
	}
	if data, err := os.ReadFile(precious); err != nil || string(data) != "keep me" {
		t.Errorf("prune followed a symlink out of the cache: %s: %q %v", precious, data, err)
	}
	if len(gcRootsFor(filepath.Join(sbox, "gcroot"))) != 1 {
		t.Errorf("the running sandbox's GC root was unregistered")
	}
	// The container's execs still load its filter.
	if res := r.Run(nil, "exec", "nx-prune-c", "true"); res.Code != 0 {
		t.Errorf("exec after prune: exit %d: %s", res.Code, res.Stderr)
	}

	// Once the sandbox is gone, its bundle and GC root go too.
	running.Process.Kill()
	<-exited
	r.Run(nil, "delete", "--force", "nx-prune-s")
	res = r.OK("cache", "prune")
	if !strings.Contains(res.Stdout, "removed 1 sandbox bundles") || freed(t, res.Stdout) <= 0 {
		t.Errorf("second prune:\n%s", res.Stdout)
	}
	mustExist(t, sbox, false)
	mustExist(t, sbox+".lock", false)
	if roots := gcRootsFor(filepath.Join(sbox, "gcroot")); len(roots) != 0 {
		t.Errorf("GC roots left for the pruned sandbox bundle: %v", roots)
	}
	mustExist(t, used[0], true)

	// --all: the filter in use goes too.
	res = r.OK("cache", "prune", "--all")
	if !strings.Contains(res.Stdout, "removed 1 seccomp filters") {
		t.Errorf("prune --all:\n%s", res.Stdout)
	}
	mustExist(t, used[0], false)
	r.OK("delete", "--force", "nx-prune-c")
	assertNoLeftovers(t, r.Root, "nx-prune-c", b.Dir)

	// An empty cache: nothing to free; a cache dir others can write to is
	// refused, in one line, and left alone.
	res = r.OK("cache", "prune")
	if n := freed(t, res.Stdout); n != 0 {
		t.Errorf("empty cache freed %d bytes", n)
	}
	open := t.TempDir()
	os.Chmod(open, 0o777)
	os.MkdirAll(filepath.Join(open, "bundle"), 0o700)
	os.WriteFile(filepath.Join(open, "bundle", "x.json"), nil, 0o600)
	r.Fail([]string{"cache prune: cache dir " + open, "writable by group or others"}, "cache", "prune", "--cache-dir", open)
	mustExist(t, filepath.Join(open, "bundle", "x.json"), true)
}

package seccomp

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nucleus-run/nucleus/cachedir"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCompiledSeccompCache(t *testing.T) {
	_ = t.TempDir()
	prof := Builtin(Options{})
	prog, err := Cached(prof)
	if err != nil {
		t.Fatal(err)
	}
	path := prog.Path
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Classic BPF: 8-byte instructions, and the argument checks make it
	// far longer than a name-only list.
	if len(data) == 0 || len(data)%8 != 0 || len(data)/8 < 150 {
		t.Fatalf("compiled filter has %d bytes", len(data))
	}
	if sha256.Sum256(data) != prog.Sum {
		t.Fatalf("cached program's digest %x differs from the recorded %x", sha256.Sum256(data), prog.Sum)
	}
	again, err := Cached(prof)
	if err != nil || again != prog {
		t.Fatalf("second compile: %v, %v; want the cached %v", again, err, prog)
	}
	strict := Builtin(Options{DenyMemfd: true})
	if other, _ := Cached(strict); other.Path == path {
		t.Fatal("different profiles share a cache entry")
	}
}

func TestCompiledSeccompLeavesNotifyToLibcontainer(t *testing.T) {
	_ = t.TempDir()
	prof := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/x.sock",
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
	if _, err := Cached(prof); !errors.Is(err, ErrNotPrecompilable) {
		t.Fatalf("notify profile: %v, want ErrNotPrecompilable", err)
	}
}

// TestSeccompCacheDirMustBeOurs: a cache directory someone else could
// write, or a symlink in its place, is not trusted; nor is a cache file
// that is a symlink.
func TestSeccompCacheDirMustBeOurs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seccomp")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := cachedir.Check(dir); err != nil {
		t.Fatalf("0700 dir of ours: %v", err)
	}
	os.Chmod(dir, 0o777)
	if err := cachedir.Check(dir); err == nil || !strings.Contains(err.Error(), "writable") {
		t.Errorf("world-writable dir: %v", err)
	}
	os.Chmod(dir, 0o720)
	if err := cachedir.Check(dir); err == nil {
		t.Errorf("group-writable dir trusted")
	}
	os.Chmod(dir, 0o700)
	if os.Geteuid() == 0 {
		os.Chown(dir, 12345, 12345)
		if err := cachedir.Check(dir); err == nil || !strings.Contains(err.Error(), "owned by uid 12345") {
			t.Errorf("dir of another uid: %v", err)
		}
		os.Chown(dir, 0, 0)
	}
	link := dir + "-link"
	os.Symlink(dir, link)
	if err := cachedir.Check(link); err == nil {
		t.Errorf("symlinked dir trusted")
	}
	file := filepath.Join(dir, "x.bpf")
	os.WriteFile(file, make([]byte, 8), 0o600)
	os.Symlink(file, filepath.Join(dir, "y.bpf"))
	if f, err := OpenProgram(filepath.Join(dir, "y.bpf")); err == nil || !strings.Contains(err.Error(), "symlink") {
		f.Close()
		t.Errorf("symlinked cache file opened: %v", err)
	}
	if f, err := OpenProgram(file); err != nil {
		t.Errorf("cache file: %v", err)
	} else {
		f.Close()
	}
}

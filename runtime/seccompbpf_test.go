package runtime

import (
	"errors"
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/policy"
)

func TestCompiledSeccompCache(t *testing.T) {
	r := &Runtime{Root: t.TempDir()}
	prof := policy.BuiltinSeccomp(policy.SeccompOptions{})
	path, err := r.compiledSeccomp(prof)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Classic BPF: 8-byte instructions, and the argument checks make it
	// far longer than a name-only list.
	if len(data) == 0 || len(data)%8 != 0 || len(data)/8 < 150 {
		t.Fatalf("compiled filter has %d bytes", len(data))
	}
	again, err := r.compiledSeccomp(prof)
	if err != nil || again != path {
		t.Fatalf("second compile: %s, %v; want the cached %s", again, err, path)
	}
	strict := policy.BuiltinSeccomp(policy.SeccompOptions{DenyMemfd: true})
	if other, _ := r.compiledSeccomp(strict); other == path {
		t.Fatal("different profiles share a cache entry")
	}
}

func TestCompiledSeccompLeavesNotifyToLibcontainer(t *testing.T) {
	r := &Runtime{Root: t.TempDir()}
	prof := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/x.sock",
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
	if _, err := r.compiledSeccomp(prof); !errors.Is(err, errNotPrecompilable) {
		t.Fatalf("notify profile: %v, want errNotPrecompilable", err)
	}
}

package gvisor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/runtime/confine"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/spec"
)

func TestGvisorNetwork(t *testing.T) {
	for _, c := range []struct {
		ns   []specs.LinuxNamespace
		want string
	}{
		{[]specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}}, "none"},
		{[]specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/var/run/netns/x"}}, "sandbox"},
		{[]specs.LinuxNamespace{{Type: specs.PIDNamespace}}, "host"},
	} {
		s := &specs.Spec{Linux: &specs.Linux{Namespaces: c.ns}}
		if got := GvisorNetwork(s); got != c.want {
			t.Errorf("%v: %s, want %s", c.ns, got, c.want)
		}
	}
	if got := GvisorNetwork(&specs.Spec{}); got != "host" {
		t.Errorf("no linux section: %s, want host", got)
	}
}

func TestGvisorFlagsSeccomp(t *testing.T) {
	s := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace}}}}
	t.Setenv(GvisorPlatformEnv, "")
	if got := GvisorFlags(s); len(got) != 2 || got[0] != "--platform=ptrace" || got[1] != "--network=none" {
		t.Errorf("flags %v", got)
	}
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	if got := GvisorFlags(s); got[len(got)-1] != "--oci-seccomp" {
		t.Errorf("flags %v: want --oci-seccomp for a config with seccomp", got)
	}
}

func TestGvisorConfig(t *testing.T) {
	s := &specs.Spec{
		Version: "1.0.2",
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/data", Type: "bind", Source: "data", Options: []string{"rbind", "ro"}},
			{Destination: "/abs", Source: "/srv/x", Options: []string{"bind"}},
			{Destination: "/proc", Type: "proc", Source: "proc"},
		},
	}
	data, rootfs, err := GvisorConfig("/b", s)
	if err != nil {
		t.Fatal(err)
	}
	if rootfs != "/b/rootfs" {
		t.Errorf("rootfs %s", rootfs)
	}
	var out specs.Spec
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out.Root.Path != "rootfs" || !out.Root.Readonly {
		t.Errorf("root %+v", out.Root)
	}
	if out.Mounts[0].Source != "/b/data" || out.Mounts[1].Source != "/srv/x" || out.Mounts[2].Source != "proc" {
		t.Errorf("mounts %+v", out.Mounts)
	}
	// The caller's spec is not changed.
	if s.Root.Path != "rootfs" || s.Mounts[0].Source != "data" {
		t.Errorf("input spec modified: %+v %+v", s.Root, s.Mounts[0])
	}
	s.Root.Path = "/abs/rootfs"
	if _, rootfs, _ = GvisorConfig("/b", s); rootfs != "/abs/rootfs" {
		t.Errorf("absolute root.path: rootfs %s", rootfs)
	}
}

// TestGvisorConfineExec: in a mode, --cap and a record without the helper
// are refused (never run unconfined); otherwise the command runs through
// the helper with the container's capabilities and no_new_privs.
func TestGvisorConfineExec(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "rootfs"), 0o755)
	cfg := spec.Default(false)
	cfg.Process.Capabilities = &specs.LinuxCapabilities{}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := strings.Repeat("ab", 32)
	rec := &gvisorRecord{Mode: "agent", ExecConfined: true, ExecFilter: confine.Filter, ExecFilterSHA256: sum, id: "c", dir: dir}
	p := &specs.Process{Args: []string{"id", "-u"}, Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN"}}}
	if err := rec.confineExec(p, engine.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{confine.Helper, confine.Command, "--seccomp", confine.Filter, "--seccomp-sha256", sum, "--", "id", "-u"}
	if !slices.Equal(p.Args, want) || !p.NoNewPrivileges || len(p.Capabilities.Bounding) != 0 {
		t.Errorf("confined process: args %q nnp %v caps %v", p.Args, p.NoNewPrivileges, p.Capabilities)
	}
	if err := rec.confineExec(&specs.Process{Args: []string{"true"}}, engine.ExecOptions{Caps: []string{"CAP_SYS_ADMIN"}}); err == nil || !strings.Contains(err.Error(), "exec --cap") {
		t.Errorf("--cap: %v", err)
	}
	rec.ExecFilterSHA256 = ""
	if err := rec.confineExec(&specs.Process{Args: []string{"true"}}, engine.ExecOptions{}); err == nil || !strings.Contains(err.Error(), "unconfined") {
		t.Errorf("record without the filter's digest: %v", err)
	}
	rec.ExecConfined = false
	if err := rec.confineExec(&specs.Process{Args: []string{"true"}}, engine.ExecOptions{}); err == nil || !strings.Contains(err.Error(), "unconfined") {
		t.Errorf("record without the helper: %v", err)
	}
	plain := &gvisorRecord{id: "p", dir: dir}
	p = &specs.Process{Args: []string{"true"}}
	if err := plain.confineExec(p, engine.ExecOptions{Caps: []string{"CAP_SYS_ADMIN"}}); err != nil || p.Args[0] != "true" {
		t.Errorf("plain container: %v %q", err, p.Args)
	}
}

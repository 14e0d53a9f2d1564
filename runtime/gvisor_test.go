package runtime

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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

func TestParseEngine(t *testing.T) {
	for in, want := range map[string]Engine{"": EngineNative, "native": EngineNative, "gvisor": EngineGvisor} {
		if got, err := ParseEngine(in); err != nil || got != want {
			t.Errorf("ParseEngine(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseEngine("kvm"); err == nil {
		t.Error("ParseEngine(kvm): no error")
	}
}

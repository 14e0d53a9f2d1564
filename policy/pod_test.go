package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/opterr"
)

// podSpec is a config as containerd's CRI writes it for a pod's
// container: annotated, joining the pod's network namespace (a file in
// place of the CNI's pinned netns: Apply only checks it is not the
// host's) and the sandbox's IPC and UTS, with sysfs and mqueue mounts.
func podSpec(t *testing.T) *specs.Spec {
	dir := t.TempDir()
	for _, n := range []string{"net", "ipc", "uts"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := baseSpec()
	s.Hostname = ""
	s.Annotations = map[string]string{criContainerType: "container"}
	s.Linux.Namespaces = []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.MountNamespace},
		{Type: specs.NetworkNamespace, Path: filepath.Join(dir, "net")},
		{Type: specs.IPCNamespace, Path: filepath.Join(dir, "ipc")},
		{Type: specs.UTSNamespace, Path: filepath.Join(dir, "uts")},
	}
	s.Mounts = []specs.Mount{
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue"},
	}
	return s
}

func nsPath(s *specs.Spec, typ specs.LinuxNamespaceType) (string, bool) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == typ {
			return ns.Path, true
		}
	}
	return "", false
}

func TestApplyPodJoinsPodNamespaces(t *testing.T) {
	in := podSpec(t)
	o := allHost
	o.Mode, o.Net = ModeAgent, NetPod
	out, plan, err := Apply(in, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
		want, _ := nsPath(in, typ)
		if got, _ := nsPath(out, typ); got != want {
			t.Errorf("%s namespace: path %q, want the pod's %q", typ, got, want)
		}
	}
	// The mode's own: a user namespace, and the rest of its confinement.
	if p, ok := nsPath(out, specs.UserNamespace); !ok || p != "" || !plan.UserNS {
		t.Errorf("user namespace: %q %v %v, want a new one", p, ok, plan.UserNS)
	}
	if out.Linux.Seccomp == nil || !out.Process.NoNewPrivileges || len(out.Process.Capabilities.Effective) != 0 || plan.Landlock == nil {
		t.Errorf("pod container lost the mode's confinement: seccomp %v nnp %v caps %v landlock %v",
			out.Linux.Seccomp != nil, out.Process.NoNewPrivileges, out.Process.Capabilities.Effective, plan.Landlock != nil)
	}
	// Mountable from its own user namespace: the host's sysfs read-only
	// instead of a sysfs it may not mount, no mqueue.
	var sys *specs.Mount
	for i, m := range out.Mounts {
		if m.Type == "mqueue" || m.Type == "sysfs" {
			t.Errorf("mount %s of type %s kept: the user namespace cannot mount it for the pod's namespaces", m.Destination, m.Type)
		}
		if m.Destination == "/sys" {
			sys = &out.Mounts[i]
		}
	}
	if sys == nil || sys.Source != "/sys" || !slices.Contains(sys.Options, "rro") || !slices.Contains(sys.Options, "rbind") {
		t.Errorf("/sys: %+v, want a recursive read-only bind of the host's", sys)
	}
	if !slices.ContainsFunc(plan.Steps, func(s Step) bool { return s.Name == "pod_namespaces_joined" && s.Applied }) {
		t.Errorf("no pod_namespaces_joined step: %+v", plan.Steps)
	}
	// The input is not changed.
	if in.Mounts[0].Type != "sysfs" {
		t.Errorf("Apply changed its input: %+v", in.Mounts[0])
	}
}

// An attacker's config (an image's bundle, a crafted annotation) naming
// the host's own namespaces gets no further than before, when a mode gave
// every container namespaces of its own: it is refused.
func TestApplyPodRefusesHostNamespaces(t *testing.T) {
	for _, typ := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
		s := podSpec(t)
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == typ {
				s.Linux.Namespaces[i].Path = "/proc/self/ns/" + nsProcName[typ]
			}
		}
		o := allHost
		o.Mode, o.Net = ModeAgent, NetPod
		if _, _, err := Apply(s, o); err == nil || !strings.Contains(err.Error(), "host's") {
			t.Errorf("%s path of the host's: %v, want refused", typ, err)
		}
	}
}

func TestApplyPodNeedsCRIConfig(t *testing.T) {
	s := podSpec(t)
	s.Annotations = nil
	o := allHost
	o.Mode, o.Net = ModeAgent, NetPod
	_, _, err := Apply(s, o)
	var oe *opterr.Error
	if err == nil || !errors.As(err, &oe) || oe.Option != "net" {
		t.Fatalf("pod without the CRI's annotation: %v, want a --net error", err)
	}
}

// A hostNetwork pod's config names no network namespace: the container
// gets an empty one of its own, as with --net none.
func TestApplyPodHostNetworkGetsItsOwn(t *testing.T) {
	s := podSpec(t)
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.NetworkNamespace })
	o := allHost
	o.Mode, o.Net = ModeAgent, NetPod
	out, _, err := Apply(s, o)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := nsPath(out, specs.NetworkNamespace); !ok || p != "" {
		t.Errorf("network namespace %q %v, want a new one", p, ok)
	}
	if !slices.ContainsFunc(out.Mounts, func(m specs.Mount) bool { return m.Type == "sysfs" }) {
		t.Errorf("sysfs mount replaced though the network namespace is the container's own")
	}
}

// The pod network's sysctls (a sandbox's, such as containerd's
// ping_group_range) move out of the config for the runtime to write from
// the host; the sandbox's IPC sysctls can't be a container's.
func TestApplyPodSysctls(t *testing.T) {
	s := podSpec(t)
	s.Linux.Sysctl = map[string]string{"net.ipv4.ping_group_range": "0 2147483647", "kernel.domainname": "x"}
	o := allHost
	o.Mode, o.Net = ModeAgent, NetPod
	out, plan, err := Apply(s, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Linux.Sysctl["net.ipv4.ping_group_range"]; ok || plan.PodNetSysctls["net.ipv4.ping_group_range"] != "0 2147483647" || out.Linux.Sysctl["kernel.domainname"] != "x" {
		t.Errorf("sysctls: config %v, plan %v: want the net one, unclamped, in the plan only", out.Linux.Sysctl, plan.PodNetSysctls)
	}
	for _, k := range []string{"kernel.shmmax", "fs.mqueue.msg_max", "net.ipv4..x"} {
		s := podSpec(t)
		s.Linux.Sysctl = map[string]string{k: "1"}
		if _, _, err := Apply(s, o); err == nil || !strings.Contains(err.Error(), "linux.sysctl: ") || !strings.Contains(err.Error(), k) {
			t.Errorf("sysctl %s: %v, want refused naming it", k, err)
		}
	}
}

package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/nucleus-run/nucleus/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func baseSpec() *specs.Spec {
	return &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "h",
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/", Capabilities: &specs.LinuxCapabilities{
			Bounding: []string{"CAP_SYS_ADMIN"}, Effective: []string{"CAP_SYS_ADMIN"}, Permitted: []string{"CAP_SYS_ADMIN"}}},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}}},
	}
}

var allHost = Options{HostLandlockABI: 7, HostSeccomp: true, HostUserNS: true}

func TestApplyNoneLeavesConfig(t *testing.T) {
	s := baseSpec()
	out, plan, err := Apply(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Linux.Seccomp != nil || out.Process.NoNewPrivileges || len(out.Process.Capabilities.Bounding) != 1 {
		t.Fatalf("mode none changed the config: %+v", out.Process)
	}
	if plan.Landlock != nil || plan.UserNS {
		t.Fatalf("mode none planned isolation: %+v", plan)
	}
}

func TestApplyAgent(t *testing.T) {
	s := baseSpec()
	o := allHost
	o.Mode = ModeAgent
	o.Workspaces = []*Workspace{{Source: "/w", Dest: "/workspace", Kind: WorkspaceBindRW}}
	out, plan, err := Apply(s, o)
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.NoNewPrivileges || s.Linux.Seccomp != nil {
		t.Fatal("Apply modified its input")
	}
	p := out.Process
	if !p.NoNewPrivileges || len(p.Capabilities.Bounding)+len(p.Capabilities.Effective)+len(p.Capabilities.Permitted)+len(p.Capabilities.Inheritable)+len(p.Capabilities.Ambient) != 0 {
		t.Errorf("caps/NNP not locked down: %+v", p.Capabilities)
	}
	if !out.Root.Readonly {
		t.Error("root not read-only")
	}
	types := map[specs.LinuxNamespaceType]string{}
	for _, n := range out.Linux.Namespaces {
		types[n.Type] = n.Path
	}
	for _, want := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.NetworkNamespace, specs.UTSNamespace, specs.IPCNamespace, specs.CgroupNamespace, specs.UserNamespace} {
		path, ok := types[want]
		if !ok || path != "" {
			t.Errorf("namespace %s: present %v, path %q (want a fresh one)", want, ok, path)
		}
	}
	if out.Linux.UIDMappings[0].HostID != HostUID || out.Linux.UIDMappings[0].ContainerID != 0 {
		t.Errorf("uid mapping %+v", out.Linux.UIDMappings)
	}
	if out.Linux.Seccomp == nil || out.Linux.Seccomp.DefaultAction != specs.ActKillProcess {
		t.Error("no kill-by-default seccomp profile")
	}
	for _, m := range []string{"/proc/keys", "/proc/kallsyms", "/sys/firmware"} {
		if !slices.Contains(out.Linux.MaskedPaths, m) {
			t.Errorf("%s not masked", m)
		}
	}
	var ws *specs.Mount
	for i := range out.Mounts {
		if out.Mounts[i].Destination == "/workspace" {
			ws = &out.Mounts[i]
		}
	}
	if ws == nil {
		t.Fatal("no workspace mount")
	}
	for _, o := range []string{"nosuid", "nodev", "noexec", "rw"} {
		if !slices.Contains(ws.Options, o) {
			t.Errorf("workspace mount lacks %s: %v", o, ws.Options)
		}
	}
	for _, m := range out.Mounts {
		if (m.Destination == "/dev" || m.Destination == "/dev/shm") && !slices.Contains(m.Options, "noexec") {
			t.Errorf("%s is not noexec: %v", m.Destination, m.Options)
		}
	}
	if plan.Landlock != nil && (slices.Contains(plan.Landlock.Write, "/dev") || slices.Contains(plan.Landlock.Devices, "/dev")) {
		t.Errorf("landlock plan grants writes to the whole of /dev: %+v", plan.Landlock)
	}
	if len(ws.UIDMappings) != 1 {
		t.Errorf("workspace is not idmapped under userns: %+v", ws)
	}
	if plan.Landlock == nil || !slices.Contains(plan.Landlock.ExecRootExcept, "/workspace") || !slices.Contains(plan.Landlock.Write, "/workspace") {
		t.Errorf("landlock plan %+v", plan.Landlock)
	}
	if plan.Posture() != "agent" {
		t.Errorf("posture %q", plan.Posture())
	}
}

func TestApplyAgentDegradesStrictRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"landlock", Options{HostSeccomp: true, HostUserNS: true}, "Landlock"},
		{"seccomp", Options{HostLandlockABI: 7, HostUserNS: true}, "seccomp"},
		{"userns", Options{HostLandlockABI: 7, HostSeccomp: true}, "user namespaces"},
	} {
		o := c.o
		o.Mode = ModeAgent
		_, plan, err := Apply(baseSpec(), o)
		if err != nil {
			t.Errorf("agent without %s: %v", c.name, err)
		} else if len(plan.Warnings) != 1 || !strings.Contains(plan.Warnings[0], c.want) || plan.Posture() != "agent-degraded" {
			t.Errorf("agent without %s: warnings %v posture %s", c.name, plan.Warnings, plan.Posture())
		}
		o.Mode = ModeStrictAgent
		if _, _, err := Apply(baseSpec(), o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("strict-agent without %s: err %v", c.name, err)
		}
	}
}

func TestApplyProduction(t *testing.T) {
	o := allHost
	o.Mode = ModeProduction
	if _, _, err := Apply(baseSpec(), o); err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("production without memory limit: %v", err)
	}
	o.MemoryLimit = 1 << 28
	if _, _, err := Apply(baseSpec(), o); err == nil || !strings.Contains(err.Error(), "seccomp") {
		t.Errorf("production without pinned seccomp: %v", err)
	}
	o.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	if _, _, err := Apply(baseSpec(), o); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Errorf("production with an unpinned seccomp profile: %v", err)
	}
	o.SeccompSHA256 = strings.Repeat("a", 64)
	for _, act := range []specs.LinuxSeccompAction{specs.ActAllow, specs.ActLog, specs.ActTrace, specs.ActNotify} {
		o.Seccomp = &specs.LinuxSeccomp{DefaultAction: act}
		if _, _, err := Apply(baseSpec(), o); err == nil || !strings.Contains(err.Error(), "defaultAction") {
			t.Errorf("production with defaultAction %s: %v", act, err)
		}
	}
	o.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	o.KeepCaps = []string{"CAP_NET_BIND_SERVICE"}
	o.Workspaces = []*Workspace{{Source: "/w", Dest: "/workspace", Kind: WorkspaceBindRW, Exec: true}}
	if _, _, err := Apply(baseSpec(), o); err == nil || !strings.Contains(err.Error(), "workspace") {
		t.Errorf("production with writable exec workspace: %v", err)
	}
	o.Workspaces[0].Exec = false
	out, plan, err := Apply(baseSpec(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Process.Capabilities.Bounding, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("production caps %v", out.Process.Capabilities.Bounding)
	}
	if *out.Linux.Resources.Memory.Limit != 1<<28 || plan.Landlock.MinABI != 3 {
		t.Errorf("production limits/landlock: %+v %+v", out.Linux.Resources.Memory, plan.Landlock)
	}
}

func TestApplyAgentDefaultLimits(t *testing.T) {
	o := allHost
	o.Mode = ModeAgent
	out, plan, err := Apply(baseSpec(), o)
	if err != nil {
		t.Fatal(err)
	}
	r := out.Linux.Resources
	if *r.Memory.Limit != AgentLimits.Memory || *r.Pids.Limit != AgentLimits.Pids || *r.CPU.Quota != int64(AgentLimits.CPUs*100000) {
		t.Errorf("agent defaults: memory %v pids %v cpu %v", *r.Memory.Limit, *r.Pids.Limit, *r.CPU.Quota)
	}
	if !slices.ContainsFunc(plan.Steps, func(s Step) bool { return s.Name == "limits_applied" && strings.Contains(s.Detail, "pids=512") }) {
		t.Errorf("no limits_applied step in %+v", plan.Steps)
	}
	o.Pids, o.MemoryLimit = 64, Unlimited
	out, _, err = Apply(baseSpec(), o)
	if err != nil {
		t.Fatal(err)
	}
	if r := out.Linux.Resources; *r.Pids.Limit != 64 || r.Memory != nil {
		t.Errorf("agent overrides: pids %v memory %+v", *r.Pids.Limit, r.Memory)
	}
	o.Mode = ModeStrictAgent
	if _, _, err := Apply(baseSpec(), o); err == nil || !strings.Contains(err.Error(), "memory: unlimited is refused") {
		t.Errorf("strict-agent with unlimited memory: %v", err)
	}
	// A limit the bundle sets itself stands.
	s := baseSpec()
	bundlePids := int64(7)
	s.Linux = &specs.Linux{Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &bundlePids}}}
	o = allHost
	o.Mode = ModeAgent
	out, _, err = Apply(s, o)
	if err != nil {
		t.Fatal(err)
	}
	if *out.Linux.Resources.Pids.Limit != 7 {
		t.Errorf("bundle's pids limit replaced: %v", *out.Linux.Resources.Pids.Limit)
	}
}

func TestApplyNetHostRefusedInStrict(t *testing.T) {
	o := allHost
	o.Mode, o.Net = ModeStrictAgent, "host"
	if _, _, err := Apply(baseSpec(), o); err == nil {
		t.Error("strict-agent accepted --net host")
	}
	o.Mode = ModeAgent
	out, _, err := Apply(baseSpec(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range out.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			t.Error("agent --net host kept a network namespace")
		}
	}
}

func TestReadPinned(t *testing.T) {
	f := t.TempDir() + "/p.json"
	if err := writeFile(f, "abc"); err != nil {
		t.Fatal(err)
	}
	good := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if _, err := ReadPinned("--x", f, good); err != nil {
		t.Errorf("good pin refused: %v", err)
	}
	_, err := ReadPinned("--x", f, strings.Repeat("1", 64))
	if err == nil || !strings.Contains(err.Error(), good) || !strings.Contains(err.Error(), strings.Repeat("1", 64)) || !strings.Contains(err.Error(), f) {
		t.Errorf("bad pin: %v", err)
	}
}

func TestApplyGvisorSubstitutesKernelSteps(t *testing.T) {
	for _, mode := range []Mode{ModeAgent, ModeStrictAgent} {
		o := Options{Mode: mode, Gvisor: true, HostSeccomp: true}
		out, plan, err := Apply(baseSpec(), o)
		if err != nil {
			t.Fatalf("%s under gVisor: %v", mode, err)
		}
		if plan.Landlock != nil || plan.UserNS || len(plan.Warnings) != 0 {
			t.Errorf("%s under gVisor: plan %+v", mode, plan)
		}
		native, _, err := Apply(baseSpec(), Options{Mode: mode, HostSeccomp: true, HostLandlockABI: 7, HostUserNS: true})
		if err != nil {
			t.Fatal(err)
		}
		if seccomp.AllowedSyscallCount(out.Linux.Seccomp) != seccomp.AllowedSyscallCount(native.Linux.Seccomp) {
			t.Errorf("%s: gVisor and native seccomp differ", mode)
		}
		var subst int
		for _, st := range plan.Steps {
			if !st.Applied && strings.Contains(st.Detail, "gVisor") {
				subst++
			}
		}
		if subst != 2 {
			t.Errorf("%s: want landlock and userns recorded as gVisor substitutions: %+v", mode, plan.Steps)
		}
	}
}

func TestWorkspaceIDMap(t *testing.T) {
	same := workspaceIDMap(0, 0, false)
	if len(same) != 1 || same[0].ContainerID != 0 || same[0].HostID != HostUID || same[0].Size != userNSSize {
		t.Errorf("root-owned read-only workspace: %+v", same)
	}
	// Writable: on-disk root is never reachable from the container.
	rw := workspaceIDMap(1000, 1000, true)
	if len(rw) != 1 || rw[0].ContainerID != 1 || rw[0].HostID != HostUID+1 || rw[0].Size != userNSSize-1 {
		t.Errorf("writable workspace, owner = workload: %+v", rw)
	}
	user := workspaceIDMap(1000, 0, true)
	if len(user) != 1 || user[0].ContainerID != 1000 || user[0].HostID != HostUID || user[0].Size != 1 {
		t.Errorf("user-owned workspace, root workload: %+v", user)
	}
	other := workspaceIDMap(1000, 7, true)
	if other[0].HostID != HostUID+7 {
		t.Errorf("workload uid 7: %+v", other)
	}
}

// TestNestedWorkspaceNotExecutable: Landlock lets the sandbox execute below
// every top-level dir but a few, so a workspace mounted below one of them
// (/opt/ws) would be executable without --workspace-exec: refused.
func TestNestedWorkspaceNotExecutable(t *testing.T) {
	for _, c := range []struct {
		dest string
		exec bool
		ok   bool
	}{
		{"/opt/ws", false, false},
		{"/workspace/sub", false, false},
		{"/opt/ws", true, true},
		{"/tmp/ws", false, true},
		{"/ws", false, true},
	} {
		o := allHost
		o.Mode = ModeAgent
		o.Workspaces = []*Workspace{{Source: "/w", Dest: c.dest, Kind: WorkspaceBindRW, Exec: c.exec}}
		_, plan, err := Apply(baseSpec(), o)
		if c.ok != (err == nil) {
			t.Errorf("%s exec=%v: err %v, want ok=%v", c.dest, c.exec, err, c.ok)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), "--workspace") || !strings.Contains(err.Error(), c.dest) {
				t.Errorf("%s: error %q names neither the flag nor the path", c.dest, err)
			}
			continue
		}
		if !c.exec && !slices.Contains(plan.Landlock.ExecRootExcept, c.dest) && c.dest == "/ws" {
			t.Errorf("%s: not kept out of exec: %+v", c.dest, plan.Landlock)
		}
	}
}

func TestWorkspacesMustNotOverlap(t *testing.T) {
	ok := []*Workspace{{Source: "/a", Dest: "/workspace"}, {Source: "/b", Dest: "/data"}}
	if err := CheckWorkspaces(ok); err != nil {
		t.Fatalf("separate destinations refused: %v", err)
	}
	for _, dests := range [][2]string{{"/workspace", "/workspace"}, {"/workspace", "/workspace/sub"}, {"/data/x", "/data"}} {
		ws := []*Workspace{{Source: "/a", Dest: dests[0]}, {Source: "/b", Dest: dests[1]}}
		if err := CheckWorkspaces(ws); err == nil {
			t.Errorf("%v accepted", dests)
		}
	}
	if err := CheckWorkspaces([]*Workspace{{Source: "/a", Dest: "/work"}, {Source: "/b", Dest: "/workspace"}}); err != nil {
		t.Errorf("/work and /workspace refused: %v", err)
	}
}

// Docker sets net.ipv4.ping_group_range to "0 2147483647" on every
// container; under the sandbox's user namespace the kernel refuses groups
// the namespace does not map, so the range is fitted into it.
func TestApplyUserNSClampsPingGroupRange(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"0 2147483647", "0 65535"},
		{"1 1", "1 1"},
		{"70000 80000", ""},
		{"nonsense", "nonsense"},
	} {
		s := baseSpec()
		s.Linux.Sysctl = map[string]string{pingGroupRange: c.in, "net.ipv4.ip_unprivileged_port_start": "0"}
		o := allHost
		o.Mode = ModeAgent
		out, plan, err := Apply(s, o)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := out.Linux.Sysctl[pingGroupRange]
		if !plan.UserNS || got != c.want || ok != (c.want != "") {
			t.Errorf("ping_group_range %q: got %q (set %v), want %q", c.in, got, ok, c.want)
		}
		if out.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" || s.Linux.Sysctl[pingGroupRange] != c.in {
			t.Errorf("ping_group_range %q: other sysctls or the input changed: %v / %v", c.in, out.Linux.Sysctl, s.Linux.Sysctl)
		}
	}
	// Without a user namespace the range is the config's.
	s := baseSpec()
	s.Linux.Sysctl = map[string]string{pingGroupRange: "0 2147483647"}
	o := allHost
	o.Mode, o.HostUserNS = ModeAgent, false
	out, _, err := Apply(s, o)
	if err != nil || out.Linux.Sysctl[pingGroupRange] != "0 2147483647" {
		t.Errorf("without a user namespace: %v, %v", err, out.Linux.Sysctl)
	}
}

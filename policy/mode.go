// Package policy turns a plain OCI config into one that enforces a Nucleus
// isolation mode. Apply is a pure function from spec to spec (no syscalls),
// so every mode's rules live here and are testable without root; the few
// pieces that must run inside the container (Landlock) are described by the
// returned Plan and carried out by the runtime's pre-exec step.
package policy

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Mode is an isolation mode.
type Mode string

const (
	// ModeNone leaves the bundle's config as it is, like runc.
	ModeNone        Mode = ""
	ModeAgent       Mode = "agent"
	ModeStrictAgent Mode = "strict-agent"
	ModeProduction  Mode = "production"
)

// ParseMode accepts the mode names of the command line.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeNone, ModeAgent, ModeStrictAgent, ModeProduction:
		return m, nil
	}
	return "", opterr.Errorf("mode", "%q: want agent, strict-agent or production", s)
}

// Strict reports whether a step that cannot be applied aborts the start.
func (m Mode) Strict() bool { return m == ModeStrictAgent || m == ModeProduction }

// WorkspaceKind is how a host directory is offered at /workspace.
type WorkspaceKind string

const (
	WorkspaceBindRW    WorkspaceKind = "bind-rw"
	WorkspaceBindRO    WorkspaceKind = "bind-ro"
	WorkspaceCopyInOut WorkspaceKind = "copy-in-out"
)

// Workspace is a host directory a sandbox may see.
type Workspace struct {
	// Source is the host directory bind-mounted (for copy-in-out: the
	// private copy, prepared by the caller).
	Source string
	// Dest is the path in the container, /workspace by default.
	Dest string
	Kind WorkspaceKind
	// Exec allows executing files from the workspace.
	Exec bool
	// OwnerUID and OwnerGID own Source on the host (filled in by the
	// caller): under the sandbox's user namespace the bind is idmapped so
	// that they are the workload's own ids inside.
	OwnerUID, OwnerGID uint32
	// Dev and Ino identify Source as the caller found it, so a directory
	// swapped in later (for a symlink to /etc) is never copied or written.
	Dev, Ino uint64
}

// CheckWorkspaces refuses a set of workspaces two of which share a
// destination or nest (one mounted inside another would hide or expose
// the other's files, and write-backs would overlap).
func CheckWorkspaces(ws []*Workspace) error {
	for i, a := range ws {
		for _, b := range ws[i+1:] {
			if a.Dest == b.Dest || strings.HasPrefix(b.Dest, a.Dest+"/") || strings.HasPrefix(a.Dest, b.Dest+"/") {
				return opterr.Errorf("workspace", "%s and %s: destinations %s and %s overlap; give each workspace its own top-level path (HOST:/DEST)", a.Source, b.Source, a.Dest, b.Dest)
			}
		}
	}
	return nil
}

// ParseWorkspace parses HOST[:DEST][:KIND] as the sandbox command takes it.
func ParseWorkspace(arg string) (*Workspace, error) {
	parts := strings.Split(arg, ":")
	w := &Workspace{Dest: "/workspace", Kind: WorkspaceBindRW}
	w.Source = parts[0]
	if w.Source == "" {
		return nil, opterr.Errorf("workspace", "%q: empty host path", arg)
	}
	for _, p := range parts[1:] {
		switch {
		case p == string(WorkspaceBindRW) || p == string(WorkspaceBindRO) || p == string(WorkspaceCopyInOut):
			w.Kind = WorkspaceKind(p)
		case strings.HasPrefix(p, "/"):
			w.Dest = filepath.Clean(p)
		default:
			return nil, opterr.Errorf("workspace", "%q: %q is neither a container path nor one of bind-rw, bind-ro, copy-in-out", arg, p)
		}
	}
	if w.Dest == "/" {
		return nil, opterr.Errorf("workspace", "%q: cannot mount over /", arg)
	}
	return w, nil
}

// Options are the inputs of Apply: the mode, the user's flags, and facts
// about the host that the caller measured (Apply makes no syscalls).
type Options struct {
	Mode Mode
	// Workspaces are the host directories offered to the sandbox, each at
	// its own destination (CheckWorkspaces says which sets are valid).
	Workspaces []*Workspace
	// Net is none (default), host, bridge or pod (NetPod).
	Net string
	// Seccomp replaces the built-in profile (a pinned per-service profile).
	Seccomp *specs.LinuxSeccomp
	// SeccompSHA256 is the pin Seccomp was checked against ("" when the
	// profile was not pinned). Production runs only pinned profiles.
	SeccompSHA256 string
	// KeepCaps are the capabilities a production policy keeps.
	KeepCaps []string
	// LandlockRules add to the mode's Landlock rules (--landlock-policy).
	LandlockRules *LandlockRules
	// MemoryLimit in bytes, Pids and CPUs (cores) limits; 0 = unset (the
	// mode's default applies), Unlimited = explicitly no limit.
	MemoryLimit int64
	Pids        int64
	CPUs        float64

	// Host facts.
	HostLandlockABI int  // 0: no Landlock
	HostSeccomp     bool // the build and kernel can apply seccomp
	HostUserNS      bool // user namespaces can be created
	// UserNSBlocker, if set, is why this bundle can't use one.
	UserNSBlocker string
	// Gvisor says the config goes to runsc: gVisor's user-space kernel
	// stands in for the host-kernel steps it cannot take (Landlock, user
	// namespace), recorded as substitutions rather than failures.
	Gvisor bool
}

// Step records what Apply decided for one isolation step.
type Step struct {
	Name    string `json:"step"`
	Applied bool   `json:"applied"`
	Detail  string `json:"detail,omitempty"`
}

// Plan is what Apply decided, for the audit log and for the parts the
// runtime carries out itself.
type Plan struct {
	Mode            Mode          `json:"mode"`
	SeccompSyscalls int           `json:"seccomp_syscalls"`
	Landlock        *LandlockPlan `json:"landlock,omitempty"`
	UserNS          bool          `json:"userns"`
	Steps           []Step        `json:"steps"`
	Warnings        []string      `json:"warnings,omitempty"`
	// SeccompCustom: the filter is the user's --seccomp-profile, not the
	// mode's built-in allowlist.
	SeccompCustom bool `json:"seccomp_custom,omitempty"`
	// PodNetSysctls are the config's net.* sysctls for the pod's network
	// namespace it joins (NetPod), moved out of the config: the
	// container's user namespace can't write them (the host's owns that
	// namespace), so the runtime writes them from the host before the
	// container starts, as runc would have from inside.
	PodNetSysctls map[string]string `json:"pod_net_sysctls,omitempty"`
}

// Posture is a one-word summary of the plan for audit events.
func (p *Plan) Posture() string {
	if p == nil || p.Mode == ModeNone {
		return "oci"
	}
	if len(p.Warnings) > 0 {
		return p.Mode.DegradedPosture()
	}
	return string(p.Mode)
}

// DegradedPosture is the posture of a container of mode m once a step of
// the mode could not be applied.
func (m Mode) DegradedPosture() string { return string(m) + "-degraded" }

// HostUID is the first host uid a sandbox's user namespace maps to: far
// from any real user's, so container root owns nothing on the host.
const HostUID = 1 << 30

// userNSSize is how many ids the sandbox's user namespace maps.
const userNSSize = 65536

// Unlimited, as a limit in Options, asks for no limit at all (where the
// mode allows it) instead of the mode's default.
const Unlimited = -1

// AgentLimits are the limits agent modes apply when neither a flag nor the
// bundle sets one: room for a compiler, a test suite or a small server,
// but not for a fork bomb or a memory hog to take the host.
var AgentLimits = struct {
	Memory int64
	Pids   int64
	CPUs   float64
}{Memory: 1 << 30, Pids: 512, CPUs: 1}

// Apply returns a copy of s made to enforce o.Mode. With ModeNone it only
// applies explicit options (limits, workspace) and leaves the config alone.
func Apply(s *specs.Spec, o Options) (*specs.Spec, *Plan, error) {
	out, err := deepCopy(s)
	if err != nil {
		return nil, nil, err
	}
	plan := &Plan{Mode: o.Mode}
	if err := CheckWorkspaces(o.Workspaces); err != nil {
		return nil, nil, err
	}
	if out.Process == nil {
		return nil, nil, fmt.Errorf("config: process: must be set")
	}
	if out.Linux == nil {
		out.Linux = &specs.Linux{}
	}
	var limits string
	if o.Mode == ModeAgent || o.Mode == ModeStrictAgent {
		if limits, err = agentLimits(out, &o); err != nil {
			return nil, nil, err
		}
	}
	if err := applyLimits(out, o); err != nil {
		return nil, nil, err
	}
	if o.Mode == ModeNone {
		if o.Seccomp != nil {
			out.Linux.Seccomp = o.Seccomp
		}
		for _, w := range o.Workspaces {
			addWorkspaceMount(out, w, false)
		}
		plan.SeccompSyscalls = seccomp.AllowedSyscallCount(out.Linux.Seccomp)
		return out, plan, nil
	}
	if o.Net == "" {
		o.Net = "none"
	}
	fail := func(step, why string) error {
		if o.Mode.Strict() {
			return fmt.Errorf("%s mode: %s: %s", o.Mode, step, why)
		}
		plan.Warnings = append(plan.Warnings, step+": "+why)
		plan.Steps = append(plan.Steps, Step{Name: step, Applied: false, Detail: why})
		return nil
	}

	// Production requirements first: refuse before changing anything.
	if o.Mode == ModeProduction {
		if o.MemoryLimit <= 0 && (out.Linux.Resources == nil || out.Linux.Resources.Memory == nil || out.Linux.Resources.Memory.Limit == nil) {
			return nil, nil, opterr.Errorf("memory", "production mode requires a memory limit")
		}
		if o.Seccomp == nil || o.SeccompSHA256 == "" {
			return nil, nil, opterr.Errorf("seccomp-profile", "production mode requires a seccomp profile pinned by its SHA-256 (seccomp-profile-sha256)")
		}
		for _, w := range o.Workspaces {
			if w.Kind != WorkspaceBindRO && w.Exec {
				return nil, nil, opterr.Errorf("workspace-exec", "production mode refuses a writable workspace with exec (use bind-ro, or no exec)")
			}
		}
		switch o.Seccomp.DefaultAction {
		case specs.ActAllow, specs.ActLog, specs.ActTrace, specs.ActNotify:
			return nil, nil, fmt.Errorf("production mode: the seccomp profile's defaultAction %s lets unlisted syscalls run; use SCMP_ACT_ERRNO or SCMP_ACT_KILL_PROCESS", o.Seccomp.DefaultAction)
		}
	}
	if o.Net == "host" && o.Mode == ModeStrictAgent {
		return nil, nil, opterr.Errorf("net", "host is refused in strict-agent mode")
	}

	// Namespaces: all of them, user where available; a pod's container
	// joins the pod's network, IPC and UTS namespaces.
	want := []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.UTSNamespace, specs.IPCNamespace, specs.CgroupNamespace}
	var joined map[specs.LinuxNamespaceType]string
	switch o.Net {
	case "none", "bridge":
		want = append(want, specs.NetworkNamespace)
	case "host":
		out.Linux.Namespaces = slices.DeleteFunc(out.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
	case NetPod:
		if !CRIPod(out) {
			return nil, nil, opterr.Errorf("net", "pod needs the config of a Kubernetes pod's container (containerd's CRI annotates it %s)", criContainerType)
		}
		want = append(want, specs.NetworkNamespace)
		if joined, err = podNamespaces(out, o.Mode); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, opterr.Errorf("net", "%q: want none, host or bridge", o.Net)
	}
	for _, t := range want {
		if joined[t] == "" {
			setNamespace(out, t)
		}
	}
	if len(joined) > 0 {
		var parts []string
		for _, t := range podShared {
			if p := joined[t]; p != "" {
				parts = append(parts, string(t)+" "+p)
			}
		}
		plan.Steps = append(plan.Steps, Step{Name: "pod_namespaces_joined", Applied: true, Detail: strings.Join(parts, ", ")})
	}
	if o.Gvisor {
		plan.Steps = append(plan.Steps, Step{Name: "userns_mapped", Applied: false, Detail: "not applicable: gVisor runs the sandbox in its own user namespace and kernel"})
	} else if o.HostUserNS && o.UserNSBlocker == "" {
		setNamespace(out, specs.UserNamespace)
		out.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: HostUID, Size: userNSSize}}
		out.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: HostUID, Size: userNSSize}}
		plan.UserNS = true
		plan.Steps = append(plan.Steps, Step{Name: "userns_mapped", Applied: true, Detail: fmt.Sprintf("0->%d size %d", HostUID, userNSSize)})
		if len(joined) > 0 {
			changed, err := podUserNS(out, joined, plan)
			if err != nil {
				return nil, nil, err
			}
			if changed != "" {
				plan.Steps = append(plan.Steps, Step{Name: "pod_mounts_adapted", Applied: true, Detail: changed})
			}
		}
		clampPingGroupRange(out)
		// The kernel lets a user namespace mount sysfs only on a network
		// namespace it owns; refuse here, in one line, rather than fail
		// in the container's init with a raw mount error. (A bind of the
		// host's /sys would carry its cgroup, debug and security mounts.)
		if o.Net == "host" && slices.ContainsFunc(out.Mounts, func(m specs.Mount) bool { return m.Type == "sysfs" }) {
			return nil, nil, opterr.Errorf("net", "host is refused in %s mode: the sandbox's user namespace cannot mount sysfs at /sys on the host's network namespace (keep a network namespace of its own, run without an isolation mode, or drop the bundle's sysfs mount)", o.Mode)
		}
	} else {
		why := "user namespaces are not available on this host"
		if o.HostUserNS {
			why = o.UserNSBlocker
		}
		if err := fail("userns_mapped", why); err != nil {
			return nil, nil, err
		}
	}

	if limits != "" {
		plan.Steps = append(plan.Steps, Step{Name: "limits_applied", Applied: true, Detail: limits})
	}

	// Capabilities and no_new_privs.
	p := out.Process
	p.NoNewPrivileges = true
	keep := []string{}
	if o.Mode == ModeProduction {
		keep = append(keep, o.KeepCaps...)
	}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: keep, Effective: keep, Permitted: keep, Inheritable: []string{}, Ambient: []string{}}
	plan.Steps = append(plan.Steps, Step{Name: "capabilities_dropped", Applied: true, Detail: fmt.Sprintf("kept %v", keep)})

	// Filesystem: read-only root, masked paths.
	if out.Root == nil {
		return nil, nil, fmt.Errorf("config: root: must be set")
	}
	out.Root.Readonly = true
	for _, m := range extraMaskedPaths {
		if !slices.Contains(out.Linux.MaskedPaths, m) {
			out.Linux.MaskedPaths = append(out.Linux.MaskedPaths, m)
		}
	}
	for _, m := range defaultReadonlyPaths {
		if !slices.Contains(out.Linux.ReadonlyPaths, m) {
			out.Linux.ReadonlyPaths = append(out.Linux.ReadonlyPaths, m)
		}
	}
	ensureTmp(out)
	hardenDev(out)
	readonlyCgroupRoot(out)
	for _, w := range o.Workspaces {
		if err := checkWorkspaceOwnership(w, plan.UserNS, o.Gvisor); err != nil {
			return nil, nil, err
		}
		addWorkspaceMount(out, w, plan.UserNS)
	}

	// Seccomp.
	switch {
	case !o.HostSeccomp:
		if err := fail("seccomp_applied", "this build or kernel cannot apply seccomp"); err != nil {
			return nil, nil, err
		}
		out.Linux.Seccomp = nil
	case o.Seccomp != nil:
		out.Linux.Seccomp = o.Seccomp
		plan.SeccompCustom = true
	default:
		out.Linux.Seccomp = seccomp.Builtin(seccomp.Options{
			DenyMemfd:         o.Mode == ModeStrictAgent,
			AllowNetlinkRoute: o.Net != "none" && (o.Net != NetPod || joined[specs.NetworkNamespace] != ""),
			Gvisor:            o.Gvisor,
		})
	}
	if out.Linux.Seccomp != nil {
		plan.SeccompSyscalls = seccomp.AllowedSyscallCount(out.Linux.Seccomp)
		plan.Steps = append(plan.Steps, Step{Name: "seccomp_applied", Applied: true, Detail: fmt.Sprintf("%d syscalls allowed, default %s", plan.SeccompSyscalls, out.Linux.Seccomp.DefaultAction)})
	}

	// Landlock, carried out by the pre-exec step inside the container.
	minABI := 1
	if o.Mode == ModeProduction {
		minABI = 3
	}
	switch {
	case o.Gvisor:
		plan.Steps = append(plan.Steps, Step{Name: "landlock_applied", Applied: false,
			Detail: "not applicable: gVisor's user-space kernel is the filesystem boundary (substituted, " + string(o.Mode) + ")"})
	case o.HostLandlockABI >= minABI:
		if plan.Landlock, err = landlockPlan(out, o, minABI); err != nil {
			return nil, nil, err
		}
		plan.Steps = append(plan.Steps, Step{Name: "landlock_applied", Applied: true, Detail: fmt.Sprintf("host ABI %d", o.HostLandlockABI)})
	case o.HostLandlockABI == 0:
		if err := fail("landlock_applied", "Landlock is not available on this kernel"); err != nil {
			return nil, nil, err
		}
	default:
		if err := fail("landlock_applied", fmt.Sprintf("Landlock ABI %d is below the required %d", o.HostLandlockABI, minABI)); err != nil {
			return nil, nil, err
		}
	}
	return out, plan, nil
}

// runc's defaults plus kernel symbol and firmware tables, key lists and
// the kernel's own facts.
var extraMaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
	"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/proc/kallsyms", "/sys/firmware", "/sys/devices/virtual/powercap",
	// The kernel's command line, build config, modules and their
	// parameters, crash-dump layout, build notes and BTF: a map for
	// choosing a kernel exploit, and nothing a workload needs.
	"/proc/cmdline", "/proc/config.gz", "/proc/modules", "/sys/kernel", "/sys/module",
}

var defaultReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// agentLimits fills in the agent modes' default for every limit that
// neither a flag nor the bundle sets, refuses "unlimited" in strict-agent,
// and describes the result for the audit log.
func agentLimits(s *specs.Spec, o *Options) (string, error) {
	r := s.Linux.Resources
	if r == nil {
		r = &specs.LinuxResources{}
	}
	bundleMemory := r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0
	bundlePids := r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0
	bundleCPU := r.CPU != nil && r.CPU.Quota != nil && *r.CPU.Quota > 0
	var unlimited []string
	pick := func(name string, v *int64, bundle bool, def int64) {
		switch {
		case *v == Unlimited:
			unlimited = append(unlimited, name)
		case *v == 0 && !bundle:
			*v = def
		}
	}
	pick("memory", &o.MemoryLimit, bundleMemory, AgentLimits.Memory)
	pick("pids", &o.Pids, bundlePids, AgentLimits.Pids)
	switch {
	case o.CPUs == Unlimited:
		unlimited = append(unlimited, "cpus")
	case o.CPUs == 0 && !bundleCPU:
		o.CPUs = AgentLimits.CPUs
	}
	if len(unlimited) > 0 && o.Mode == ModeStrictAgent {
		return "", opterr.Errorf(unlimited[0], "unlimited is refused in strict-agent mode; give a limit")
	}
	describe := func(v int64, bundle bool, format func(int64) string) string {
		switch {
		case v > 0:
			return format(v)
		case bundle:
			return "bundle's"
		}
		return "unlimited"
	}
	bytes := func(v int64) string { return fmt.Sprintf("%d", v) }
	cpus := "unlimited"
	if o.CPUs > 0 {
		cpus = fmt.Sprintf("%g", o.CPUs)
	} else if bundleCPU {
		cpus = "bundle's"
	}
	return fmt.Sprintf("memory=%s pids=%s cpus=%s", describe(o.MemoryLimit, bundleMemory, bytes), describe(o.Pids, bundlePids, bytes), cpus), nil
}

func applyLimits(s *specs.Spec, o Options) error {
	if o.MemoryLimit < Unlimited || o.Pids < Unlimited || (o.CPUs < 0 && o.CPUs != Unlimited) {
		return fmt.Errorf("limits must not be negative")
	}
	if o.MemoryLimit <= 0 && o.Pids <= 0 && o.CPUs <= 0 {
		return nil
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	r := s.Linux.Resources
	if o.MemoryLimit > 0 {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		m := o.MemoryLimit
		r.Memory.Limit = &m
	}
	if o.Pids > 0 {
		p := o.Pids
		r.Pids = &specs.LinuxPids{Limit: &p}
	}
	if o.CPUs > 0 {
		period := uint64(100000)
		quota := int64(o.CPUs * float64(period))
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		r.CPU.Period, r.CPU.Quota = &period, &quota
	}
	return nil
}

func setNamespace(s *specs.Spec, t specs.LinuxNamespaceType) {
	for i, n := range s.Linux.Namespaces {
		if n.Type == t {
			// A path would join a host namespace: a sandbox gets its own.
			s.Linux.Namespaces[i].Path = ""
			return
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t})
}

func ensureTmp(s *specs.Spec) {
	for _, m := range s.Mounts {
		if m.Destination == "/tmp" {
			return
		}
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs",
		Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=256m"}})
}

// hardenDev makes the config's /dev and /dev/shm tmpfs mounts noexec:
// both are writable in part (Landlock grants /dev/shm and the standard
// nodes), so a binary written there must not run even where Landlock is
// missing. Device nodes still work: noexec only stops execve and mmap
// PROT_EXEC of files on the mount.
func hardenDev(s *specs.Spec) {
	for i, m := range s.Mounts {
		if (m.Destination == "/dev" || m.Destination == "/dev/shm") && m.Type == "tmpfs" && !slices.Contains(m.Options, "noexec") {
			s.Mounts[i].Options = append(slices.Clone(m.Options), "noexec")
		}
	}
}

// readonlyCgroupRoot makes a read-only cgroup mount's root read-only for
// real: on a cgroup v1 host libcontainer mounts a tmpfs at /sys/fs/cgroup
// for the hierarchies and leaves that tmpfs writable whatever the mount's
// ro says (the mount audit found it). A read-only path is bound over it
// and remounted ro once every mount is in place.
func readonlyCgroupRoot(s *specs.Spec) {
	for _, m := range s.Mounts {
		if m.Type != "cgroup" || !slices.Contains(m.Options, "ro") {
			continue
		}
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if !slices.Contains(s.Linux.ReadonlyPaths, m.Destination) {
			s.Linux.ReadonlyPaths = append(slices.Clone(s.Linux.ReadonlyPaths), m.Destination)
		}
	}
}

// checkWorkspaceOwnership refuses a writable bind where nothing maps
// container root away from host uid 0 (gVisor's gofer writes as root; a
// host without user namespaces): a root process in the sandbox, the
// workload or one `exec --user 0` starts later, could leave a root-owned
// set-id file on the host.
func checkWorkspaceOwnership(w *Workspace, userns, gvisor bool) error {
	if w.Kind != WorkspaceBindRW || userns {
		return nil
	}
	why := "this sandbox runs without a user namespace"
	if gvisor {
		why = "under gVisor, files the sandbox creates are written by root on the host"
	}
	return opterr.Errorf("workspace", "%s: a writable bind would let a root process in the sandbox create root-owned (set-id) files on the host: %s; use :copy-in-out or :bind-ro", w.Source, why)
}

// addWorkspaceMount binds the workspace nosuid,nodev (and noexec unless
// allowed). Under the sandbox's user namespace a bind of the host's
// directory is idmapped, so files keep their owners as the container sees
// them and files it creates land on disk with the host owners they'd have
// without it. A copy-in-out copy needs no idmap: the caller makes it the
// workload's own on the host.
func addWorkspaceMount(s *specs.Spec, w *Workspace, userns bool) {
	opts := []string{"rbind", "nosuid", "nodev"}
	if !w.Exec {
		opts = append(opts, "noexec")
	}
	if w.Kind == WorkspaceBindRO {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "rw")
	}
	m := specs.Mount{Destination: w.Dest, Type: "bind", Source: w.Source, Options: opts}
	if userns && WorkspaceIdmapped(w) {
		writable := w.Kind != WorkspaceBindRO
		m.UIDMappings = workspaceIDMap(w.OwnerUID, s.Process.User.UID, writable)
		m.GIDMappings = workspaceIDMap(w.OwnerGID, s.Process.User.GID, writable)
	}
	s.Mounts = append(s.Mounts, m)
}

// workspaceIDMap maps the workspace owner's on-disk id to the workload's id
// inside the container (whose user namespace maps container id i to host
// HostUID+i). When they are the same id, every id maps straight through
// (for a writable bind: every id but 0, so nothing the container does can
// make a file root's on disk); otherwise only the owner does (other owners
// show as nobody), and files the workload creates land on disk as the
// owner's. Without this a workspace owned by, say, uid 1000 would not be
// writable by a workload running as container root, which has no
// capabilities to override it.
func workspaceIDMap(owner, workload uint32, writable bool) []specs.LinuxIDMapping {
	if owner == workload {
		if writable {
			return []specs.LinuxIDMapping{{ContainerID: 1, HostID: HostUID + 1, Size: userNSSize - 1}}
		}
		return []specs.LinuxIDMapping{{ContainerID: 0, HostID: HostUID, Size: userNSSize}}
	}
	return []specs.LinuxIDMapping{{ContainerID: owner, HostID: HostUID + workload, Size: 1}}
}

func deepCopy(s *specs.Spec) (*specs.Spec, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("copy config: %w", err)
	}
	var out specs.Spec
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("copy config: %w", err)
	}
	return &out, nil
}

// pingGroupRange is the sysctl Docker sets on every container (all groups
// may open ICMP sockets: "0 2147483647").
const pingGroupRange = "net.ipv4.ping_group_range"

// clampPingGroupRange fits the config's net.ipv4.ping_group_range into
// the sandbox's user namespace: the kernel refuses (EINVAL) a range with a
// group the namespace does not map, so Docker's default would fail every
// start. The groups it keeps are all the namespace has; a range with none
// of them is dropped, since it could allow no group anyway.
func clampPingGroupRange(s *specs.Spec) {
	v, ok := s.Linux.Sysctl[pingGroupRange]
	if !ok {
		return
	}
	var lo, hi int64
	if n, err := fmt.Sscanf(v, "%d %d", &lo, &hi); err != nil || n != 2 {
		return // not ours to judge: the kernel refuses it with its own error
	}
	lo, hi = max(lo, 0), min(hi, userNSSize-1)
	if lo > hi {
		delete(s.Linux.Sysctl, pingGroupRange)
		return
	}
	s.Linux.Sysctl[pingGroupRange] = fmt.Sprintf("%d %d", lo, hi)
}

// WorkspaceIdmapped says whether a workspace's bind is idmapped under the
// sandbox's user namespace. A copy is the workload's own already. A
// read-only bind of a directory root owns is not: the idmap would make its
// owner the workload, and root's 0600 files (behind a symlink the workspace
// path followed, say /etc/shadow) readable; unmapped, root's files show as
// nobody's and only what any host user may read can be read.
func WorkspaceIdmapped(w *Workspace) bool {
	if w.Kind == WorkspaceCopyInOut {
		return false
	}
	return !(w.Kind == WorkspaceBindRO && (w.OwnerUID == 0 || w.OwnerGID == 0))
}

// WorkspaceIDMaps are the uid and gid maps of a workspace bind's idmapped
// mount (see workspaceIDMap) for a workload running as uid:gid in the
// sandbox's user namespace: the same a cold sandbox's bind gets, for a
// bind made into a started one (a warm pool's).
func WorkspaceIDMaps(w *Workspace, uid, gid uint32) (uids, gids []specs.LinuxIDMapping) {
	writable := w.Kind != WorkspaceBindRO
	return workspaceIDMap(w.OwnerUID, uid, writable), workspaceIDMap(w.OwnerGID, gid, writable)
}

// CheckWorkspaceBind refuses a bind the sandbox could turn against the
// host, as a cold sandbox's policy does (checkWorkspaceOwnership).
func CheckWorkspaceBind(w *Workspace, userns bool) error {
	return checkWorkspaceOwnership(w, userns, false)
}

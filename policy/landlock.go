package policy

import (
	"strconv"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PreExecCommand is the hidden argv[1] with which the runtime runs the
// sealed copy of its own binary inside the container, ahead of the
// workload, to apply Landlock (libcontainer has no hook between mount setup
// and the workload's exec). preexec.c handles it before Go starts.
const PreExecCommand = "landlock-exec"

// LandlockPlan is the filesystem policy the pre-exec step enforces, in
// container paths.
type LandlockPlan struct {
	// MinABI below which the step fails (strict modes) or warns.
	MinABI int  `json:"min_abi"`
	Strict bool `json:"strict"`
	// Read is readable (files and directories) beneath each path.
	Read []string `json:"read"`
	// ExecRootExcept: every top-level entry of / except these gets
	// execute: the closure and system dirs can run, /tmp and the
	// workspace cannot.
	ExecRootExcept []string `json:"exec_root_except"`
	// Exec lists extra paths with execute (a workspace with --workspace-exec).
	Exec []string `json:"exec,omitempty"`
	// Write is writable (create, remove, write, truncate) beneath each path.
	Write []string `json:"write"`
	// Devices may take device ioctls (terminals).
	Devices []string `json:"devices"`
	// Audit identifies the container in the audit event the step writes.
	ContainerID string `json:"id,omitempty"`
	Posture     string `json:"posture,omitempty"`
}

func landlockPlan(s *specs.Spec, o Options, minABI int) *LandlockPlan {
	lp := &LandlockPlan{
		MinABI:         minABI,
		Strict:         o.Mode.Strict(),
		Read:           []string{"/"},
		ExecRootExcept: []string{"/tmp", "/proc", "/sys", "/dev", "/run"},
		Write:          []string{"/tmp", "/dev"},
		Devices:        []string{"/dev"},
	}
	if s.Hostname != "" {
		lp.ContainerID = s.Hostname
	}
	if w := o.Workspace; w != nil {
		lp.ExecRootExcept = append(lp.ExecRootExcept, w.Dest)
		if w.Kind != WorkspaceBindRO {
			lp.Write = append(lp.Write, w.Dest)
		}
		if w.Exec {
			lp.Exec = append(lp.Exec, w.Dest)
		}
	}
	return lp
}

// LandlockABI returns the kernel's Landlock ABI version, 0 if none. It asks
// the kernel directly: a seccomp filter returning ENOSYS or a disabled LSM
// both read as 0, never as success.
func LandlockABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// Args is the command line of the pre-exec step (preexec.c) for this plan,
// ahead of the workload's own argv; an fd of -1 is "none".
func (lp *LandlockPlan) Args(selfFd, auditFd, seccompFd int) []string {
	args := []string{PreExecCommand,
		"--min-abi=" + strconv.Itoa(lp.MinABI),
		"--self-fd=" + strconv.Itoa(selfFd),
		"--audit-fd=" + strconv.Itoa(auditFd),
		"--seccomp-fd=" + strconv.Itoa(seccompFd),
		"--id=" + lp.ContainerID,
		"--posture=" + lp.Posture,
	}
	if lp.Strict {
		args = append(args, "--strict")
	}
	for _, group := range []struct {
		flag  string
		paths []string
	}{{"--read=", lp.Read}, {"--write=", lp.Write}, {"--dev=", lp.Devices}, {"--exec=", lp.Exec}, {"--no-exec-root=", lp.ExecRootExcept}} {
		for _, p := range group.paths {
			args = append(args, group.flag+p)
		}
	}
	return append(args, "--")
}

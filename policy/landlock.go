package policy

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"github.com/nucleus-run/nucleus/opterr"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// LandlockPlan is the filesystem policy the pre-exec step (package
// preexec) enforces, in container paths.
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
	// Devices are writable and may take device ioctls (terminals).
	Devices []string `json:"devices"`
	// ContainerID and Posture identify the container in the audit event
	// the step writes; the runtime fills them in at start (Apply does not
	// know the id).
	ContainerID string `json:"id,omitempty"`
	Posture     string `json:"posture,omitempty"`
}

// devNodes are what a workload may write in /dev (besides /dev/shm): the
// standard nodes, the console when there is one, and /dev/pts, which also
// covers /dev/ptmx (a symlink to pts/ptmx, and the step grants nothing
// through symlinks). Anything else in /dev, including new files, is read
// only. Missing ones are skipped by the step.
var devNodes = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/console", "/dev/pts"}

// noExecRoot are the top-level dirs the sandbox may never execute from.
var noExecRoot = []string{"/tmp", "/proc", "/sys", "/dev", "/run"}

func landlockPlan(s *specs.Spec, o Options, minABI int) (*LandlockPlan, error) {
	lp := &LandlockPlan{
		MinABI:         minABI,
		Strict:         o.Mode.Strict(),
		Read:           []string{"/"},
		ExecRootExcept: slices.Clone(noExecRoot),
		Write:          []string{"/tmp", "/dev/shm"},
		Devices:        slices.Clone(devNodes),
	}
	if r := o.LandlockRules; r != nil {
		// A service's own rules add to the base: more paths to read,
		// write or run from, and top-level dirs to keep exec out of.
		lp.Read = append(lp.Read, r.Read...)
		lp.Write = append(lp.Write, r.Write...)
		lp.Exec = append(lp.Exec, r.Exec...)
		lp.ExecRootExcept = append(lp.ExecRootExcept, r.NoExecRoot...)
	}
	for _, w := range o.Workspaces {
		// Landlock only adds rights: exec granted beneath a top-level dir
		// can't be taken back for a workspace mounted below it, so such a
		// destination would be executable (only the noexec mount would be
		// left in the way).
		if top := topLevel(w.Dest); !w.Exec && top != w.Dest && !slices.Contains(lp.ExecRootExcept, top) {
			return nil, opterr.Errorf("workspace", "%s: below %s, which the sandbox may execute from, the workspace would be executable; mount it at a top-level path such as /workspace or below /tmp, or pass --workspace-exec", w.Dest, top)
		}
		lp.ExecRootExcept = append(lp.ExecRootExcept, w.Dest)
		if w.Kind != WorkspaceBindRO {
			lp.Write = append(lp.Write, w.Dest)
		}
		if w.Exec {
			lp.Exec = append(lp.Exec, w.Dest)
		}
	}
	return lp, nil
}

// topLevel is the top-level directory p is in ("/opt" for "/opt/ws").
func topLevel(p string) string {
	rest := strings.TrimPrefix(path.Clean(p), "/")
	first, _, _ := strings.Cut(rest, "/")
	return "/" + first
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

// LandlockRules is a Landlock policy file (--landlock-policy): container
// paths added to the mode's rules.
type LandlockRules struct {
	Read       []string `json:"read,omitempty"`
	Write      []string `json:"write,omitempty"`
	Exec       []string `json:"exec,omitempty"`
	NoExecRoot []string `json:"no_exec_root,omitempty"`
}

// ParseLandlockRules parses and checks a Landlock policy file.
func ParseLandlockRules(file string, data []byte) (*LandlockRules, error) {
	var r LandlockRules
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: not a Landlock policy ({\"read\", \"write\", \"exec\", \"no_exec_root\": [paths]}): %w", file, err)
	}
	for field, paths := range map[string][]string{"read": r.Read, "write": r.Write, "exec": r.Exec, "no_exec_root": r.NoExecRoot} {
		for i, p := range paths {
			if !path.IsAbs(p) || path.Clean(p) != p || strings.ContainsAny(p, "\x00\n") {
				return nil, fmt.Errorf("%s: %s[%d]: %q is not a clean absolute container path", file, field, i, p)
			}
			if field == "no_exec_root" && (p == "/" || path.Dir(p) != "/") {
				return nil, fmt.Errorf("%s: %s[%d]: %q is not a top-level directory", file, field, i, p)
			}
		}
	}
	return &r, nil
}

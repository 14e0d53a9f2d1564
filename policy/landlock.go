package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// PreExecCommand is the hidden argv[1] with which the runtime runs the
// sealed copy of its own binary inside the container, ahead of the
// workload, to apply Landlock (libcontainer has no hook between mount setup
// and the workload's exec).
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

// Filesystem rights Nucleus handles (and so denies unless granted): all
// those of ABI 1-5 except Refer, which would forbid cross-directory renames
// in ways programs don't expect.
const (
	readRights  = ll.AccessFSReadFile | ll.AccessFSReadDir
	execRights  = ll.AccessFSExecute
	writeRights = ll.AccessFSWriteFile | ll.AccessFSRemoveDir | ll.AccessFSRemoveFile | ll.AccessFSMakeDir |
		ll.AccessFSMakeReg | ll.AccessFSMakeSym | ll.AccessFSMakeSock | ll.AccessFSMakeFifo | ll.AccessFSTruncate
	deviceRights  = ll.AccessFSIoctlDev
	handledRights = readRights | execRights | writeRights | deviceRights | ll.AccessFSMakeChar | ll.AccessFSMakeBlock
)

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

// restrictThread applies the plan to the calling OS thread, which must be
// locked and must be the one that execs the workload. It returns the ABI.
func (lp *LandlockPlan) restrictThread() (int, error) {
	abi := LandlockABI()
	if abi < lp.MinABI || abi == 0 {
		return abi, fmt.Errorf("kernel Landlock ABI %d, need at least %d", abi, max(lp.MinABI, 1))
	}
	var rules []landlock.Rule
	add := func(rights landlock.AccessFSSet, paths []string) {
		var present []string
		for _, p := range paths {
			if _, err := os.Stat(p); err == nil {
				present = append(present, p)
			}
		}
		if len(present) > 0 {
			rules = append(rules, landlock.PathAccess(rights, present...))
		}
	}
	add(readRights, lp.Read)
	entries, err := os.ReadDir("/")
	if err != nil {
		return abi, fmt.Errorf("list /: %w", err)
	}
	var execPaths []string
	for _, e := range entries {
		p := "/" + e.Name()
		if !slices.Contains(lp.ExecRootExcept, p) {
			execPaths = append(execPaths, p)
		}
	}
	add(execRights|readRights, execPaths)
	add(execRights|readRights, lp.Exec)
	add(writeRights|readRights, lp.Write)
	add(deviceRights|writeRights|readRights, lp.Devices)
	cfg, err := landlock.NewConfig(landlock.AccessFSSet(handledRights))
	if err != nil {
		return abi, err
	}
	// BestEffort drops rights the kernel's ABI doesn't know (e.g. IoctlDev
	// below ABI 5); the minimum ABI was checked above.
	fd, _, err := cfg.BestEffort().NewRulesetFD(rules...)
	if err != nil {
		return abi, fmt.Errorf("build Landlock ruleset: %w", err)
	}
	defer unix.Close(fd)
	if err := ll.LandlockRestrictSelf(fd, 0); err != nil {
		return abi, fmt.Errorf("landlock_restrict_self: %w", err)
	}
	return abi, nil
}

// PreExec is the body of `nucleus landlock-exec PLAN SELF_FD AUDIT_FD --
// ARGV...`: restrict this process with Landlock, record the result in the
// audit log, close our own descriptors and exec the workload in place (the
// container's init pid stays the workload's). It never returns.
func PreExec(args []string) {
	goruntime.LockOSThread()
	fail := func(code int, format string, a ...any) {
		fmt.Fprintf(os.Stderr, "nucleus: "+format+"\n", a...)
		os.Exit(code)
	}
	if len(args) < 5 || args[3] != "--" {
		fail(125, "%s: usage: PLAN SELF_FD AUDIT_FD -- ARGV...", PreExecCommand)
	}
	var lp LandlockPlan
	if err := json.Unmarshal([]byte(args[0]), &lp); err != nil {
		fail(125, "%s: bad plan: %v", PreExecCommand, err)
	}
	selfFd, _ := strconv.Atoi(args[1])
	auditFd, _ := strconv.Atoi(args[2])
	argv := args[4:]

	abi, err := lp.restrictThread()
	event := map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano), "event": "landlock_applied",
		"id": lp.ContainerID, "posture": lp.Posture, "abi": abi, "applied": err == nil,
		"rules": map[string]any{"read": lp.Read, "exec_root_except": lp.ExecRootExcept, "exec": lp.Exec, "write": lp.Write}}
	if err != nil {
		event["error"] = err.Error()
	}
	if auditFd > 2 {
		line, _ := json.Marshal(event)
		_, _ = unix.Write(auditFd, append(line, '\n'))
		unix.Close(auditFd)
	}
	if err != nil {
		if lp.Strict {
			fail(126, "landlock: %v (strict mode: refusing to run unconfined)", err)
		}
		fmt.Fprintf(os.Stderr, "nucleus: warning: landlock not applied: %v\n", err)
	}
	if selfFd > 2 {
		unix.CloseOnExec(selfFd)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			fail(127, "exec %s: not found in the container", argv[0])
		}
		fail(126, "exec %s: %v", argv[0], err)
	}
	err = syscall.Exec(path, argv, os.Environ())
	if errors.Is(err, unix.EACCES) {
		fail(126, "exec %s: permission denied (Landlock allows no execution there)", argv[0])
	}
	fail(126, "exec %s: %v", argv[0], err)
}

package native

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/runc/libcontainer"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// libcontainer sets the process's rlimits on its init (a Go program, this
// binary) while the init still has work to do: it builds the seccomp
// filter, drops capabilities and waits for start. A Go program maps far
// more address space than it uses (the init has ~1.5 GB mapped), so an
// RLIMIT_AS a workload lives well under (runtime-tools' process_rlimits
// asks for 1 GiB) makes that init fail to allocate, and the create fails.
// RLIMIT_AS is therefore kept back from libcontainer and set on the init
// right before it is let go to exec the process: the process starts with
// it, as the config says. A process exec'd into the container later gets
// it from libcontainer as before.
const deferredRlimitsFile = "nucleus-rlimits.json"

// RlimitExecCommand is argv[1] of the C trampoline (fastexec.c) that sets
// a process's RLIMIT_AS and execs it: for a container without the pre-exec
// step, the init execs /proc/self/exe (this binary, sealed) with it, so the
// limit is set after the Go init is gone. Set from outside on the waiting
// init (applyDeferredRlimits), it made the init's last allocations fail
// about one start in ten: the Go runtime holds ~1.5 GB of address space.
const RlimitExecCommand = "rlimit-exec"

// trampolineRlimits returns s with the RLIMIT_AS of its process set by
// the trampoline instead of libcontainer; s itself is not changed.
func trampolineRlimits(s *specs.Spec) *specs.Spec {
	out, rls := deferRlimits(s)
	if len(rls) == 0 {
		return s
	}
	p := *out.Process
	p.Args = append([]string{"/proc/self/exe", RlimitExecCommand, fmt.Sprintf("--as=%d:%d", rls[0].Soft, rls[0].Hard), "--"}, p.Args...)
	out.Process = &p
	return out
}

// deferRlimits returns s without the RLIMIT_AS of its process, and that
// limit; s itself is not changed.
func deferRlimits(s *specs.Spec) (*specs.Spec, []specs.POSIXRlimit) {
	if s.Process == nil {
		return s, nil
	}
	i := slices.IndexFunc(s.Process.Rlimits, func(rl specs.POSIXRlimit) bool { return rl.Type == "RLIMIT_AS" })
	if i < 0 {
		return s, nil
	}
	out := *s
	p := *s.Process
	p.Rlimits = slices.Delete(slices.Clone(s.Process.Rlimits), i, i+1)
	out.Process = &p
	return &out, []specs.POSIXRlimit{s.Process.Rlimits[i]}
}

func saveDeferredRlimits(stateDir string, rls []specs.POSIXRlimit) error {
	if len(rls) == 0 {
		return nil
	}
	data, err := json.Marshal(rls)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stateDir, deferredRlimitsFile), data, 0o600); err != nil {
		return fmt.Errorf("rlimits: %w", err)
	}
	return nil
}

// applyDeferredRlimits sets the kept-back rlimits on the init of c, which
// waits for start.
func applyDeferredRlimits(stateDir string, c *libcontainer.Container) error {
	data, err := os.ReadFile(filepath.Join(stateDir, deferredRlimitsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rlimits: %w", err)
	}
	var rls []specs.POSIXRlimit
	if err := json.Unmarshal(data, &rls); err != nil {
		return fmt.Errorf("rlimits: %s: %w", filepath.Join(stateDir, deferredRlimitsFile), err)
	}
	st, err := c.State()
	if err != nil {
		return fmt.Errorf("state of %s: %w", c.ID(), err)
	}
	for _, rl := range rls {
		if rl.Type != "RLIMIT_AS" {
			continue
		}
		if err := unix.Prlimit(st.InitProcessPid, unix.RLIMIT_AS, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}, nil); err != nil {
			return fmt.Errorf("process.rlimits: set %s on the container's init: %w", rl.Type, err)
		}
	}
	return nil
}

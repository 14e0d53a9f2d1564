package runtime

import (
	"fmt"
	"os"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/seccomp"
)

// Trace runs a sandbox whose every syscall is recorded and returns the
// command's status and the sorted syscall names it (and the container's own
// setup after the filter is in place) used. The mode's built-in allowlist
// is a floor the trace keeps: a syscall it refuses fails (and is listed in
// Refused) instead of running, so a traced workload can do nothing the
// built-in allowlist forbids, and no trace can ask for it. So does one it
// never mentions that is not among the syscalls a trace may add
// (seccomp.TraceExtensions).
func (r *Runtime) Trace(o SandboxOptions) (*seccomp.Trace, error) {
	if o.Engine == EngineGvisor {
		// gVisor's kernel has no seccomp user notification to trace with.
		return nil, fmt.Errorf("trace under the gvisor engine: %w", ErrUnsupported)
	}
	dir, err := os.MkdirTemp("", "nucleus-trace-")
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer os.RemoveAll(dir)
	floor := seccomp.Builtin(seccomp.Options{
		DenyMemfd:         o.Policy.Mode == policy.ModeStrictAgent,
		AllowNetlinkRoute: o.Policy.Net != "" && o.Policy.Net != "none",
	})
	tracer, err := seccomp.StartTracer(dir, floor)
	if err != nil {
		return nil, err
	}
	profile, err := seccomp.TraceProfile(tracer.Path)
	if err != nil {
		tracer.Stop()
		return nil, err
	}
	o.Policy.Seccomp = profile
	status, err := r.Sandbox(o)
	used, refused := tracer.Stop()
	if err != nil {
		return nil, err
	}
	return &seccomp.Trace{Command: o.Args, Status: status.Status, Syscalls: used, Refused: refused}, nil
}

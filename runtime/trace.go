package runtime

import (
	"fmt"
	"os"

	"github.com/nucleus-run/nucleus/seccomp"
)

// Trace runs a sandbox whose every syscall is recorded and returns the
// command's status and the sorted syscall names it (and the container's own
// setup after the filter is in place) used.
func (r *Runtime) Trace(o SandboxOptions) (int, []string, error) {
	dir, err := os.MkdirTemp("", "nucleus-trace-")
	if err != nil {
		return -1, nil, fmt.Errorf("trace: %w", err)
	}
	defer os.RemoveAll(dir)
	tracer, err := seccomp.StartTracer(dir)
	if err != nil {
		return -1, nil, err
	}
	profile, err := seccomp.TraceProfile(tracer.Path)
	if err != nil {
		tracer.Syscalls()
		return -1, nil, err
	}
	o.Policy.Seccomp = profile
	status, err := r.Sandbox(o)
	names := tracer.Syscalls()
	if err != nil {
		return -1, nil, err
	}
	return status, names, nil
}

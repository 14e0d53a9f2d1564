package seccomp

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Trace is what `nucleus policy trace` writes: the syscalls one run used.
type Trace struct {
	Command  []string `json:"command"`
	Status   int      `json:"status"`
	Syscalls []string `json:"syscalls"`
}

// ParseTrace reads a trace file.
func ParseTrace(file string, data []byte) (*Trace, error) {
	var t Trace
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("%s: not a nucleus trace: %w", file, err)
	}
	for i, s := range t.Syscalls {
		if s == "" || strings.ContainsAny(s, " \t\n/") {
			return nil, fmt.Errorf("%s: syscalls[%d]: %q is not a syscall name", file, i, s)
		}
	}
	return &t, nil
}

// runtimeBaseline are syscalls a program makes at moments no trace can pin
// down: returning from a signal handler, the kernel restarting a syscall,
// and language runtimes' preemption and scheduling (Go preempts threads
// with tgkill, parks them on futexes, returns memory with madvise). A
// trace may or may not catch them; a profile without them kills the same
// program at random.
var runtimeBaseline = []string{
	"rt_sigreturn", "restart_syscall", "tgkill", "getpid", "gettid", "sched_yield",
	"futex", "nanosleep", "madvise", "mmap", "munmap", "exit", "exit_group",
}

// Generate turns the union of traces into a minimal allowlist
// profile: the traced syscalls plus runtimeBaseline; everything else kills
// the process.
func Generate(traces []*Trace) *specs.LinuxSeccomp {
	set := map[string]bool{}
	for _, s := range runtimeBaseline {
		set[s] = true
	}
	for _, t := range traces {
		for _, s := range t.Syscalls {
			set[s] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActKillProcess,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}},
	}
}

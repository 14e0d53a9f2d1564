package seccomp

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Trace is what `nucleus policy trace` writes: the syscalls one run used.
type Trace struct {
	Command  []string `json:"command"`
	Status   int      `json:"status"`
	Syscalls []string `json:"syscalls"`
	// Refused are the syscalls the tracer refused: those the built-in
	// allowlist refuses, and those it never mentions that are not among
	// the syscalls a trace may add. generate never allows them for that
	// (the second kind get an EPERM rule, as during the trace).
	Refused []string `json:"refused,omitempty"`
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
// language runtimes' preemption and scheduling (Go preempts threads with
// tgkill, parks them on futexes, returns memory with madvise), and process
// pools stopping workers that may or may not have exited yet (Python's
// multiprocessing.Pool kills the ones still running when it closes). A
// trace may or may not catch them; a profile without them kills the same
// program at random.
var runtimeBaseline = []string{
	"rt_sigreturn", "restart_syscall", "tgkill", "getpid", "gettid", "sched_yield",
	"futex", "nanosleep", "madvise", "mmap", "munmap", "exit", "exit_group", "kill",
}

// Generate turns the union of traces into a minimal profile built on the
// built-in allowlist, which is a floor no trace can lift (a trace is only a
// list of names, and the traced code chose them):
//   - a traced syscall the built-in allows unconditionally is allowed;
//   - one it allows under argument checks (clone, socket, socketpair,
//     ioctl, prctl, personality, memfd_create) gets those same rules;
//   - one it never mentions is allowed only if it is on the list of
//     syscalls a trace may add (traceExtensions); any other is left out
//     (the default kill applies) and returned in leftOut, for the caller
//     to warn about: a trace could only have recorded it as used if the
//     file was edited, since the tracer refuses it;
//   - one it never mentions, not on that list, that a trace records as
//     refused keeps the tracer's answer (an EPERM rule), so that the
//     workload meets under the profile the error it met, and coped with,
//     during the trace;
//   - every refusal rule of the built-in (the EPERM list: mount, ptrace,
//     bpf, keyctl, io_uring, unshare, setns, ...; clone3's ENOSYS; the
//     refused socket families, ioctls and memfd flags) is kept, traced or
//     not, and a syscall it names is never allowed otherwise.
//
// runtimeBaseline counts as traced. Everything else kills the process.
func Generate(traces []*Trace) (profile *specs.LinuxSeccomp, leftOut []string) {
	used := map[string]bool{}
	for _, s := range runtimeBaseline {
		used[s] = true
	}
	refused := map[string]bool{}
	for _, t := range traces {
		for _, s := range t.Syscalls {
			used[s] = true
		}
		for _, s := range t.Refused {
			refused[s] = true
		}
	}
	base := Builtin(Options{})
	out := &specs.LinuxSeccomp{
		DefaultAction: specs.ActKillProcess,
		Architectures: []specs.Arch{specs.ArchX86_64},
	}
	mentioned := map[string]bool{}
	var rules []specs.LinuxSyscall
	for _, r := range base.Syscalls {
		for _, n := range r.Names {
			mentioned[n] = true
		}
		if r.Action != specs.ActAllow {
			rules = append(rules, r)
			continue
		}
		var keep []string
		for _, n := range r.Names {
			if used[n] {
				keep = append(keep, n)
			}
		}
		if len(keep) > 0 {
			r.Names = keep
			rules = append(rules, r)
		}
	}
	var extra, errs []string
	for n := range used {
		switch {
		case mentioned[n]:
		case IsTraceExtension(n):
			extra = append(extra, n)
		default:
			leftOut = append(leftOut, n)
		}
	}
	for n := range refused {
		// Only real syscall names (the tracer records a call from
		// another architecture as unknown-NR), and never one that
		// some rule above or the extension list already decides.
		if !mentioned[n] && !IsTraceExtension(n) && isSyscallName(n) {
			errs = append(errs, n)
		}
	}
	sort.Strings(extra)
	sort.Strings(errs)
	sort.Strings(leftOut)
	if len(extra) > 0 {
		rules = append(rules, specs.LinuxSyscall{Names: extra, Action: specs.ActAllow})
	}
	if len(errs) > 0 {
		errno := uint(unlistedErrno)
		rules = append(rules, specs.LinuxSyscall{Names: errs, Action: specs.ActErrno, ErrnoRet: &errno})
	}
	out.Syscalls = rules
	return out, leftOut
}

// isSyscallName reports whether libseccomp knows name as an x86_64 syscall.
func isSyscallName(name string) bool {
	_, err := libseccomp.GetSyscallFromNameByArch(name, libseccomp.ArchAMD64)
	return err == nil
}

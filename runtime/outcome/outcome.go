// Package outcome says how a container's run ended and, when something
// killed or stopped it, who: seccomp (naming the syscall from the kernel's
// record of the kill), the kernel's OOM killer, Landlock (from its audit
// record) or nucleus's own --timeout. Nothing here runs while the
// container starts: the caller remembers the start time, and the kernel
// log is read only after an exit that needs explaining.
package outcome

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Reason is why a run ended.
type Reason string

const (
	// Exited: the process exited on its own (any status).
	Exited Reason = "exited"
	// Signaled: a signal killed it, and nothing says who sent it.
	Signaled Reason = "signaled"
	Timeout  Reason = "timeout"
	OOM      Reason = "oom"
	Seccomp  Reason = "seccomp"
	// Landlock: the process exited non-zero after Landlock denied it an
	// access (the kernel logged the denial).
	Landlock Reason = "landlock"
)

// Exit is how a run ended.
type Exit struct {
	// ID is the sandbox's id, for a sandbox's result (its id may be
	// random); other runs leave it empty.
	ID string
	// Status is the exit status nucleus exits with: the process's, or
	// 128+N when signal N killed it (as a shell reports it), 124 for a
	// --timeout.
	Status int
	// Signal is the signal's name when Status says one ended the
	// process ("SIGSYS").
	Signal string
	Reason Reason
	// Syscall and SyscallNr name the syscall seccomp killed for, when
	// the kernel's record of the kill was found (else "" and -1).
	Syscall   string
	SyscallNr int
	// Detail completes the reason: the mode's allowlist, the memory
	// limit, the Landlock access and rules, the timeout.
	Detail   string
	Duration time.Duration
	// PeakMemoryBytes is the container cgroup's peak memory use (0:
	// unknown, e.g. under the gVisor engine).
	PeakMemoryBytes int64
	// Pool, for a run from a warm pool (package pool), says where it ran:
	// "warm" (a member taken), or "cold: ..." (the pool was empty).
	Pool string

	// line is the one line Line reports, composed when the reason was
	// decided (it needs facts the Exit does not keep).
	line string
}

// Line is the one line that tells the user who ended the run, or "" when
// the process exited (or was signaled) for no reason nucleus knows.
func (e Exit) Line() string { return e.line }

// exitJSON is Exit as JSON: the message is Line, the duration in ms.
type exitJSON struct {
	ID              string `json:"id,omitempty"`
	Status          int    `json:"status"`
	Signal          string `json:"signal,omitempty"`
	Reason          Reason `json:"reason"`
	Syscall         string `json:"syscall,omitempty"`
	SyscallNr       *int   `json:"syscall_nr,omitempty"`
	Detail          string `json:"detail,omitempty"`
	Message         string `json:"message,omitempty"`
	DurationMs      int64  `json:"duration_ms"`
	PeakMemoryBytes int64  `json:"peak_memory_bytes,omitempty"`
	Pool            string `json:"pool,omitempty"`
}

// MarshalJSON writes the exit as audit events (and `sandbox --json`) show
// it.
func (e Exit) MarshalJSON() ([]byte, error) {
	out := exitJSON{ID: e.ID, Status: e.Status, Signal: e.Signal, Reason: e.Reason, Syscall: e.Syscall, Detail: e.Detail,
		Message: e.line, DurationMs: e.Duration.Milliseconds(), PeakMemoryBytes: e.PeakMemoryBytes, Pool: e.Pool}
	if e.Reason == Seccomp && e.SyscallNr >= 0 {
		out.SyscallNr = &e.SyscallNr
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (e *Exit) UnmarshalJSON(data []byte) error {
	var in exitJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	*e = Exit{ID: in.ID, Status: in.Status, Signal: in.Signal, Reason: in.Reason, Syscall: in.Syscall, SyscallNr: -1, Detail: in.Detail,
		Duration: time.Duration(in.DurationMs) * time.Millisecond, PeakMemoryBytes: in.PeakMemoryBytes, Pool: in.Pool, line: in.Message}
	if in.SyscallNr != nil {
		e.SyscallNr = *in.SyscallNr
	}
	return nil
}

// Fields are the exit's fields for an audit event.
func (e Exit) Fields() map[string]any {
	data, _ := e.MarshalJSON()
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m
}

// Plain is the exit of a run that ended with status and nothing more
// known.
func Plain(status int) Exit { return Exit{Status: status, Reason: Exited, SyscallNr: -1} }

// TimeoutStatus is the status of a run whose timeout expired, as
// timeout(1) reports it.
const TimeoutStatus = 124

// TimedOut is e after nucleus killed the run because its timeout expired.
func (e Exit) TimedOut(d time.Duration) Exit {
	e.Status, e.Reason, e.Syscall, e.SyscallNr = TimeoutStatus, Timeout, "", -1
	e.Detail = "--timeout " + d.String() + " expired"
	e.line = "killed by nucleus: " + e.Detail
	return e
}

// IDRange is a range of host ids: a user namespace mapping's.
type IDRange struct{ First, Size uint32 }

func (r IDRange) contains(id uint64) bool {
	return id >= uint64(r.First) && id-uint64(r.First) < uint64(r.Size)
}

// LandlockRules are what the mode's Landlock rules allow, to say what the
// denied access would have needed.
type LandlockRules struct {
	Write []string
	// Exec are extra paths with execute; NoExecRoot the top-level dirs
	// without it.
	Exec       []string
	NoExecRoot []string
}

// Facts are what the runtime knows of a finished run.
type Facts struct {
	Status int
	// Pid is the container's init on the host (0 if unknown).
	Pid            int
	Started, Ended time.Time
	// OOMKills counts the container's processes the OOM killer killed.
	OOMKills        int64
	PeakMemoryBytes int64
	// MemoryLimit is the container's memory limit in bytes (0: none).
	MemoryLimit int64
	// Mode is the isolation mode ("" for none).
	Mode string
	// Seccomp says a seccomp filter applied; SeccompCustom that it was
	// the user's profile, not the mode's built-in allowlist.
	Seccomp, SeccompCustom bool
	// HostUIDs are the host uids the container's processes run as: its
	// user namespace's mappings, or its process's uid without one.
	HostUIDs []IDRange
	// Landlock is set when the pre-exec step applied Landlock rules.
	Landlock *LandlockRules
	// HostKernel is false when the workload's syscalls never reached the
	// host kernel (gVisor): no kernel record can name them.
	HostKernel bool
}

const sigsys = int(unix.SIGSYS)

// Classify decides the reason for f, reading the kernel log only when the
// exit needs explaining (a SIGSYS; a non-zero exit under Landlock while
// the kernel's audit is on).
func Classify(f Facts) Exit {
	return classify(f, systemLog{})
}

// kernelLog is where classify finds the kernel's records; tests give
// their own.
type kernelLog interface {
	// audit calls visit for each audit record of the given types in the
	// log until visit returns true; at the end of the log it waits up to
	// wait for more records unless enough says it has what it needs.
	audit(types []int, wait time.Duration, visit func(AuditRecord) bool, enough func() bool) error
	// auditOn says whether the kernel's audit is enabled (Landlock logs
	// only then).
	auditOn() bool
}

func classify(f Facts, log kernelLog) Exit {
	e := Exit{Status: f.Status, Reason: Exited, SyscallNr: -1, PeakMemoryBytes: f.PeakMemoryBytes}
	if !f.Started.IsZero() && !f.Ended.IsZero() {
		e.Duration = f.Ended.Sub(f.Started)
	}
	if f.Status > 128 && f.Status < 128+65 {
		e.Reason = Signaled
		e.Signal = unix.SignalName(unix.Signal(f.Status - 128))
	}
	switch {
	case f.Status == 128+sigsys && f.Seccomp:
		e.Reason = Seccomp
		nr, name, why := f.seccompKill(log)
		e.SyscallNr, e.Syscall = nr, name
		rule, hint := f.seccompRule()
		e.Detail = "not " + rule
		switch {
		case nr >= 0 && hint != "":
			e.line = fmt.Sprintf("killed by seccomp: syscall %s (%d) is not %s (%s)", name, nr, rule, hint)
		case nr >= 0:
			e.line = fmt.Sprintf("killed by seccomp: syscall %s (%d) is not %s", name, nr, rule)
		case hint != "":
			e.line = fmt.Sprintf("killed by seccomp: a syscall not %s (%s; %s)", rule, why, hint)
		default:
			e.line = fmt.Sprintf("killed by seccomp: a syscall not %s (%s)", rule, why)
		}
	case f.Status == 128+int(unix.SIGKILL) && f.OOMKills > 0:
		e.Reason = OOM
		if f.MemoryLimit > 0 {
			e.Detail = "memory limit " + FormatBytes(f.MemoryLimit) + " reached"
			e.line = "killed by the kernel's OOM killer: " + e.Detail + " (--memory to raise it)"
		} else {
			e.Detail = "the host ran out of memory"
			e.line = "killed by the kernel's OOM killer: " + e.Detail
		}
	case f.Status != 0 && f.Landlock != nil && f.HostKernel && log.auditOn():
		if d, ok := f.landlockDenial(log); ok {
			e.Reason = Landlock
			e.Detail = d.describe(f)
			e.line = "landlock denied: " + e.Detail
		}
	}
	return e
}

// seccompRule says which rules the syscall is not in, and where to look.
func (f Facts) seccompRule() (rule, hint string) {
	switch {
	case f.Mode == "":
		return "allowed by the container's seccomp profile", ""
	case f.SeccompCustom:
		return fmt.Sprintf("in the %s profile", f.Mode), "--seccomp-profile"
	}
	return fmt.Sprintf("in the %s allowlist", f.Mode), "see nucleus policy show; --seccomp-profile to extend"
}

// FormatBytes writes n as the --memory flag takes it: 1G, 32M, 512K, or
// bytes when it is no whole number of those.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		sfx  string
	}{{1 << 40, "T"}, {1 << 30, "G"}, {1 << 20, "M"}, {1 << 10, "K"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.sfx)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// joinPaths lists paths for a one-line message.
func joinPaths(paths []string) string {
	if len(paths) == 0 {
		return "nowhere"
	}
	return strings.Join(paths, ", ")
}

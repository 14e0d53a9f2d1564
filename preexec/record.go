// Package preexec is the contract between the runtime and the pre-exec
// step (preexec.c), which runs inside the container ahead of the workload
// to apply Landlock and the compiled seccomp filter. The runtime encodes
// one Record and hands it over as a sealed memfd; the step's argv carries
// only that descriptor's number. Limits are enforced here, in Go, so an
// oversized policy refuses the start instead of being cut short in C, and
// the C decoder refuses any record that breaks them again.
//
// Format, version 4 (integers little-endian):
//
//	header: "NUCLPXR\x00" | u32 version | u32 body length
//	body:   u32 flags | u32 min ABI | i32 self, audit, seccomp, status fds |
//	        [32]byte seccomp SHA-256 | 4 × str JSON fragments |
//	        5 × (u32 count | count × str) path lists
//	str:    u32 length | bytes
//
// Flags: 1 strict, 2 scope signals (version 2 added it), 4 hold (version
// 3), 8 defer Landlock (version 4); an older decoder would refuse a newer bit, so the version says which
// bits exist.
//
// The JSON fragments are the audit fields known before the step runs
// (id, posture, degraded posture, rules), rendered by encoding/json, so
// the C side only concatenates them with integers and the few strings it
// learns itself (entry names, errors), which it escapes to ASCII.
package preexec

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Command is the hidden argv[1] with which the runtime runs the sealed copy
// of its own binary ahead of the workload; preexec.c handles it in an ELF
// constructor, before the Go runtime starts.
const Command = "landlock-exec"

// RecordFlag is the argument before "--" that names the record:
// --record-fd=N.
const RecordFlag = "--record-fd="

// RlimitFlag, repeated before "--", is an rlimit the step sets on itself
// before anything else: --rlimit=RESOURCE:SOFT:HARD (numbers). It is for
// a container whose user namespace host root did not create, where host
// root may not set them from outside.
const RlimitFlag = "--rlimit="

// SupervisorFlag, before "--" of a held init, names a listening
// SOCK_SEQPACKET socket: --supervisor-fd=N. The held init then serves
// `nucleus exec` on it (supervise.c, package supervise).
const SupervisorFlag = "--supervisor-fd="

// ReapFlag, before "--" of a container's init, is --reap=MODE: the step
// stays as the workload's parent, forwards signals to it, exits with its
// status and, when seccomp killed it, writes one line naming seccomp and
// MODE's allowlist on stderr. It is for a container started detached (the
// OCI create/start of a containerd shim), where no nucleus process waits
// for the workload to say why it died.
const ReapFlag = "--reap="

// Limits of a record; preexec.c checks the same numbers.
const (
	Magic   = "NUCLPXR\x00"
	Version = 4
	// MaxPaths is the number of paths over all five lists.
	MaxPaths = 256
	// MaxPathLen is PATH_MAX less its terminating NUL.
	MaxPathLen = 4095
	// MaxFragment bounds each pre-rendered JSON fragment.
	MaxFragment = 1 << 20
	// MaxRecord bounds the whole record.
	MaxRecord = 4 << 20
)

// Flag bits.
const (
	FlagStrict       = 1 << 0
	FlagScopeSignals = 1 << 1
	FlagHold         = 1 << 2
	// FlagDeferLandlock: see Record.DeferLandlock.
	FlagDeferLandlock = 1 << 3
)

// HoldCommand is the command of a held init (Record.Hold): the step's argv
// after "--" is HoldCommand and the seconds until it exits (0: never).
const HoldCommand = "nucleus-hold"

// Record is everything the pre-exec step needs. Descriptor numbers are as
// the step will see them; -1 is none.
type Record struct {
	// Strict makes any failure to confine fatal; otherwise Landlock may
	// be lost (with a warning and a degraded posture), seccomp never.
	Strict bool
	// ScopeSignals asks for Landlock's signal scope (ABI >= 6): the
	// workload and its descendants may then signal only processes of
	// their own Landlock domain. The container's init gets it, so that
	// its processes can't stop or kill what `nucleus exec` starts later
	// (each exec'd process starts in a domain of its own); exec'd
	// processes don't, so that the platform can still signal the init
	// from one. Where the kernel's ABI is older it is skipped, and the
	// landlock_applied event says so ("signal_scope": false).
	ScopeSignals bool
	// Hold makes the step, once confined, stay as the container's init
	// instead of exec'ing a workload: it reaps orphans (the processes
	// `nucleus exec` starts end up its children) and exits on SIGTERM,
	// SIGINT or SIGHUP, or when the seconds given after HoldCommand have
	// passed. A long-lived sandbox without a command of its own runs it.
	Hold bool
	// DeferLandlock, for a held init with a supervisor, applies Landlock
	// not to the init but to each command its supervisor starts, in the
	// child just before the exec (without the signal scope, as for an
	// exec'd process): a warm pool's member has its workspace mounted
	// over its placeholder after it started, and Landlock ignores rules
	// on a mount point a later mount hides, so the rules must be made
	// when the command's /workspace is known. The init itself keeps its
	// seccomp filter, empty capabilities and no_new_privs; a kernel that
	// lacks Landlock is found at the start (degraded or refused, as
	// without this flag), and a command whose rules can't be applied
	// does not run.
	DeferLandlock bool
	// MinABI is the lowest Landlock ABI accepted.
	MinABI int
	// SelfFd is the sealed nucleus binary (closed on exec).
	SelfFd int
	// AuditFd receives the step's audit events.
	AuditFd int
	// SeccompFd holds the compiled BPF program; SeccompSHA256 is its
	// digest, checked before it is loaded.
	SeccompFd     int
	SeccompSHA256 [32]byte
	// StatusFd receives one byte before the workload's exec: 'A' when
	// confined as planned, 'D' when the step went on degraded.
	StatusFd int

	// Audit identity: container id, posture and the posture to report
	// once a step is lost.
	ID, Posture, DegradedPosture string

	// Landlock rules, in container paths: Read is readable beneath each
	// path, Write also writable, Devices also device ioctls, Exec
	// readable and executable; every top-level entry of / except
	// ExecRootExcept is readable and executable.
	Read, Write, Devices, Exec, ExecRootExcept []string
}

// ErrLimit marks a record that exceeds the limits above.
var ErrLimit = errors.New("pre-exec record limit")

// Fragments are the audit JSON pieces a record carries, as Encode renders
// them (exported for tests that compare the decoder's view).
func (r *Record) Fragments() (id, posture, degraded, rules string, err error) {
	field := func(k string, v any) (string, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("pre-exec record: %s: %w", k, err)
		}
		return `"` + k + `":` + string(b), nil
	}
	if id, err = field("id", r.ID); err != nil {
		return
	}
	if posture, err = field("posture", r.Posture); err != nil {
		return
	}
	if degraded, err = field("posture", r.DegradedPosture); err != nil {
		return
	}
	nonNil := func(p []string) []string {
		if p == nil {
			return []string{}
		}
		return p
	}
	rules, err = field("rules", map[string][]string{"read": nonNil(r.Read), "write": nonNil(r.Write),
		"devices": nonNil(r.Devices), "exec": nonNil(r.Exec), "exec_root_except": nonNil(r.ExecRootExcept)})
	return
}

// Lists returns the path lists in record order.
func (r *Record) Lists() [5][]string {
	return [5][]string{r.Read, r.Write, r.Devices, r.Exec, r.ExecRootExcept}
}

// ListNames name the path lists in record order.
var ListNames = [5]string{"read", "write", "devices", "exec", "exec_root_except"}

// Encode checks r against the limits and returns its binary form.
func (r *Record) Encode() ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	data, err := r.marshal()
	if err != nil {
		return nil, err
	}
	if len(data) > MaxRecord {
		return nil, fmt.Errorf("%w: record of %d bytes (at most %d)", ErrLimit, len(data), MaxRecord)
	}
	return data, nil
}

// Check reports whether r is within the limits (Encode checks again).
func (r *Record) Check() error {
	n := 0
	for i, list := range r.Lists() {
		for _, p := range list {
			n++
			switch {
			case len(p) > MaxPathLen:
				return fmt.Errorf("%w: %s path %.40q... is too long (%d bytes, at most %d)", ErrLimit, ListNames[i], p, len(p), MaxPathLen)
			case !strings.HasPrefix(p, "/") || strings.IndexByte(p, 0) >= 0:
				return fmt.Errorf("%w: %s path %q is not an absolute path without NUL bytes", ErrLimit, ListNames[i], p)
			}
		}
	}
	if n > MaxPaths {
		return fmt.Errorf("%w: too many Landlock paths (%d, at most %d)", ErrLimit, n, MaxPaths)
	}
	if r.MinABI < 0 || r.MinABI > 1<<16 {
		return fmt.Errorf("%w: Landlock ABI %d out of range", ErrLimit, r.MinABI)
	}
	for _, fd := range []int{r.SelfFd, r.AuditFd, r.SeccompFd, r.StatusFd} {
		if fd < -1 || fd > 1<<20 {
			return fmt.Errorf("%w: descriptor %d out of range", ErrLimit, fd)
		}
	}
	return nil
}

// marshal lays r out without checking the limits (tests use it to craft
// records the decoder must refuse).
func (r *Record) marshal() ([]byte, error) {
	id, posture, degraded, rules, err := r.Fragments()
	if err != nil {
		return nil, err
	}
	for _, f := range []string{id, posture, degraded, rules} {
		if len(f) > MaxFragment {
			return nil, fmt.Errorf("%w: audit fragment of %d bytes (at most %d)", ErrLimit, len(f), MaxFragment)
		}
	}
	body := make([]byte, 0, 256+len(rules)*2)
	u32 := func(v uint32) { body = binary.LittleEndian.AppendUint32(body, v) }
	str := func(s string) { u32(uint32(len(s))); body = append(body, s...) }
	var flags uint32
	if r.Strict {
		flags |= FlagStrict
	}
	if r.ScopeSignals {
		flags |= FlagScopeSignals
	}
	if r.Hold {
		flags |= FlagHold
	}
	if r.DeferLandlock {
		flags |= FlagDeferLandlock
	}
	u32(flags)
	u32(uint32(r.MinABI))
	for _, fd := range []int{r.SelfFd, r.AuditFd, r.SeccompFd, r.StatusFd} {
		u32(uint32(int32(fd)))
	}
	body = append(body, r.SeccompSHA256[:]...)
	for _, f := range []string{id, posture, degraded, rules} {
		str(f)
	}
	for _, list := range r.Lists() {
		u32(uint32(len(list)))
		for _, p := range list {
			str(p)
		}
	}
	out := make([]byte, 0, 16+len(body))
	out = append(out, Magic...)
	out = binary.LittleEndian.AppendUint32(out, Version)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...), nil
}

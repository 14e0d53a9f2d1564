package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Verdict is what a profile does with one syscall and its arguments.
type Verdict struct {
	Action specs.LinuxSeccompAction
	// Errno is the error an SCMP_ACT_ERRNO or SCMP_ACT_TRACE verdict
	// returns (EPERM when the rule sets none, as runc and Compile do).
	Errno uint
	// Ruled says some rule names the syscall. A syscall no rule names
	// gets the default action with Ruled false; one whose rules all miss
	// its arguments gets the default action with Ruled true.
	Ruled bool
}

// Refuses reports whether the verdict stops the syscall (an error, a
// signal or a kill) rather than letting it run.
func (v Verdict) Refuses() bool {
	switch v.Action {
	case specs.ActAllow, specs.ActLog, specs.ActNotify:
		return false
	}
	return true
}

// actionRank orders actions as the kernel does when several filters
// disagree: the most restrictive wins.
func actionRank(a specs.LinuxSeccompAction) int {
	switch a {
	case specs.ActKillProcess:
		return 7
	case specs.ActKill, specs.ActKillThread:
		return 6
	case specs.ActTrap:
		return 5
	case specs.ActErrno:
		return 4
	case specs.ActNotify:
		return 3
	case specs.ActTrace:
		return 2
	case specs.ActLog:
		return 1
	}
	return 0 // allow
}

// Evaluate is the action the profile s gives the x86_64 syscall name with
// arguments args, worked out as Compile's filter decides it: a rule
// without arguments always matches; the argument checks of a rule are
// and-ed, except that a rule with several checks on one argument matches
// when any of its checks does (libcontainer splits such a rule in one
// rule per check); checks compare the full 64-bit values; a masked
// equality compares args[i]&value with valueTwo. When several rules match,
// the most restrictive action wins (the profiles this package writes never
// overlap); when none does, the default action applies.
func Evaluate(s *specs.LinuxSeccomp, name string, args [6]uint64) Verdict {
	v := Verdict{Action: s.DefaultAction, Errno: errnoOf(s.DefaultErrnoRet)}
	matched := false
	for _, r := range s.Syscalls {
		if !names(r, name) {
			continue
		}
		v.Ruled = true
		if !ruleMatches(r, args) {
			continue
		}
		if !matched || actionRank(r.Action) > actionRank(v.Action) {
			v.Action, v.Errno = r.Action, errnoOf(r.ErrnoRet)
		}
		matched = true
	}
	return v
}

func errnoOf(ret *uint) uint {
	if ret == nil {
		return uint(unix.EPERM)
	}
	return *ret
}

func names(r specs.LinuxSyscall, name string) bool {
	for _, n := range r.Names {
		if n == name {
			return true
		}
	}
	return false
}

// ruleMatches reports whether the argument checks of r hold for args.
func ruleMatches(r specs.LinuxSyscall, args [6]uint64) bool {
	if len(r.Args) == 0 {
		return true
	}
	perArg := map[uint]int{}
	for _, a := range r.Args {
		perArg[a.Index]++
	}
	split := false
	for _, n := range perArg {
		split = split || n > 1
	}
	for _, a := range r.Args {
		ok := argMatches(a, args)
		if split && ok {
			return true
		}
		if !split && !ok {
			return false
		}
	}
	return !split
}

func argMatches(a specs.LinuxSeccompArg, args [6]uint64) bool {
	if a.Index > 5 {
		return false
	}
	x := args[a.Index]
	switch a.Op {
	case specs.OpNotEqual:
		return x != a.Value
	case specs.OpLessThan:
		return x < a.Value
	case specs.OpLessEqual:
		return x <= a.Value
	case specs.OpEqualTo:
		return x == a.Value
	case specs.OpGreaterEqual:
		return x >= a.Value
	case specs.OpGreaterThan:
		return x > a.Value
	case specs.OpMaskedEqual:
		return x&a.Value == a.ValueTwo
	}
	return false
}

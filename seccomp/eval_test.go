package seccomp

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func verdict(t *testing.T, s *specs.LinuxSeccomp, name string, args ...uint64) Verdict {
	t.Helper()
	var a [6]uint64
	copy(a[:], args)
	return Evaluate(s, name, a)
}

// TestEvaluateBuiltin: the built-in allowlist's decisions, worked out in Go,
// for the syscalls the tracer and generate lean on.
func TestEvaluateBuiltin(t *testing.T) {
	s := Builtin(Options{})
	eperm, eafnosupport, enosys := uint(unix.EPERM), uint(unix.EAFNOSUPPORT), uint(unix.ENOSYS)
	cases := []struct {
		name  string
		args  []uint64
		act   specs.LinuxSeccompAction
		errno uint // checked for ActErrno
		ruled bool
	}{
		{"read", nil, specs.ActAllow, 0, true},
		{"mount", nil, specs.ActErrno, eperm, true},
		{"unshare", []uint64{unix.CLONE_NEWUSER | unix.CLONE_NEWNET}, specs.ActErrno, eperm, true},
		{"setns", nil, specs.ActErrno, eperm, true},
		{"bpf", nil, specs.ActErrno, eperm, true},
		{"clone3", nil, specs.ActErrno, enosys, true},
		{"clone", []uint64{uint64(unix.SIGCHLD)}, specs.ActAllow, 0, true},
		{"clone", []uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, specs.ActKillProcess, 0, true},
		{"socket", []uint64{unix.AF_UNIX, unix.SOCK_STREAM, 0}, specs.ActAllow, 0, true},
		{"socket", []uint64{unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_NETFILTER}, specs.ActErrno, eafnosupport, true},
		{"socket", []uint64{unix.AF_PACKET, unix.SOCK_RAW, 0}, specs.ActErrno, eafnosupport, true},
		{"socket", []uint64{unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP}, specs.ActErrno, eperm, true},
		{"socket", []uint64{unix.AF_TIPC, unix.SOCK_RDM, 0}, specs.ActKillProcess, 0, true},
		{"socketpair", []uint64{unix.AF_UNIX, unix.SOCK_STREAM, 0}, specs.ActAllow, 0, true},
		{"socketpair", []uint64{unix.AF_ALG, unix.SOCK_SEQPACKET, 0}, specs.ActErrno, eperm, true},
		{"socketpair", []uint64{1<<32 | unix.AF_UNIX, unix.SOCK_STREAM, 0}, specs.ActErrno, eperm, true},
		{"memfd_create", []uint64{0, 0}, specs.ActErrno, eperm, true},
		{"memfd_create", []uint64{0, unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING}, specs.ActErrno, eperm, true},
		{"memfd_create", []uint64{0, mfdExec}, specs.ActErrno, eperm, true},
		{"memfd_create", []uint64{0, mfdExec | mfdNoexecSeal}, specs.ActErrno, eperm, true},
		{"memfd_create", []uint64{0, mfdNoexecSeal}, specs.ActAllow, 0, true},
		{"memfd_create", []uint64{0, mfdNoexecSeal | unix.MFD_CLOEXEC | unix.MFD_HUGETLB | 1<<40}, specs.ActAllow, 0, true},
		{"ioctl", []uint64{0, unix.TIOCSTI}, specs.ActErrno, eperm, true},
		{"ioctl", []uint64{0, unix.TCGETS}, specs.ActAllow, 0, true},
		{"prctl", []uint64{unix.PR_SET_NAME}, specs.ActAllow, 0, true},
		{"prctl", []uint64{unix.PR_SET_MM}, specs.ActKillProcess, 0, true},
		{"personality", []uint64{0x0040000}, specs.ActErrno, eperm, true}, // ADDR_NO_RANDOMIZE
		// Not named anywhere: the default, unruled (what a trace lets run).
		{"kcmp", nil, specs.ActKillProcess, 0, false},
		{"splice", nil, specs.ActKillProcess, 0, false},
	}
	for _, c := range cases {
		v := verdict(t, s, c.name, c.args...)
		if v.Action != c.act || v.Ruled != c.ruled || (c.act == specs.ActErrno && v.Errno != c.errno) {
			t.Errorf("%s%#x: %+v, want %s errno %d ruled %v", c.name, c.args, v, c.act, c.errno, c.ruled)
		}
	}
}

// TestEvaluateRules: the operators, several checks on one argument, and
// overlapping rules.
func TestEvaluateRules(t *testing.T) {
	e := uint(unix.EACCES)
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"a", "b"}, Action: specs.ActAllow},
		{Names: []string{"c"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: 5, Op: specs.OpGreaterThan}, {Index: 1, Value: 3, Op: specs.OpLessEqual}}},
		// two checks on one argument: or-ed, as libcontainer splits them
		{Names: []string{"d"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 0, Value: 7, Op: specs.OpEqualTo}}},
		// overlapping rules: the most restrictive wins
		{Names: []string{"e"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0xf0, ValueTwo: 0x10, Op: specs.OpMaskedEqual}}},
		{Names: []string{"e"}, Action: specs.ActErrno, ErrnoRet: &e, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0x11, Op: specs.OpGreaterEqual}}},
		{Names: []string{"f"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 2, Op: specs.OpLessThan}}},
		{Names: []string{"f"}, Action: specs.ActKillThread, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 2, Op: specs.OpNotEqual}}},
	}}
	cases := []struct {
		name string
		args []uint64
		act  specs.LinuxSeccompAction
	}{
		{"a", nil, specs.ActAllow}, {"b", []uint64{9}, specs.ActAllow}, {"z", nil, specs.ActErrno},
		{"c", []uint64{6, 3}, specs.ActAllow}, {"c", []uint64{5, 3}, specs.ActErrno}, {"c", []uint64{6, 4}, specs.ActErrno},
		{"d", []uint64{1}, specs.ActAllow}, {"d", []uint64{7}, specs.ActAllow}, {"d", []uint64{2}, specs.ActErrno},
		{"e", []uint64{0, 0, 0x10}, specs.ActAllow}, {"e", []uint64{0, 0, 0x1f}, specs.ActErrno}, {"e", []uint64{0, 0, 0x20}, specs.ActErrno},
		{"f", []uint64{1}, specs.ActKillThread}, {"f", []uint64{2}, specs.ActErrno}, {"f", []uint64{3}, specs.ActKillThread},
	}
	for _, c := range cases {
		if v := verdict(t, s, c.name, c.args...); v.Action != c.act {
			t.Errorf("%s%v: %s, want %s", c.name, c.args, v.Action, c.act)
		}
	}
	if v := verdict(t, s, "e", 0, 0, 0x1f); v.Errno != e {
		t.Errorf("errno %d, want %d", v.Errno, e)
	}
	if v := verdict(t, s, "z"); v.Ruled || v.Errno != uint(unix.EPERM) {
		t.Errorf("unnamed syscall: %+v, want unruled default EPERM", v)
	}
}

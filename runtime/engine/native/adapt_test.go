package native

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSeccompMayDeny(t *testing.T) {
	errnoGetcwd := specs.LinuxSyscall{Names: []string{"getcwd"}, Action: specs.ActErrno}
	allowGetcwd := specs.LinuxSyscall{Names: []string{"getcwd", "read"}, Action: specs.ActAllow}
	condGetcwd := specs.LinuxSyscall{Names: []string{"getcwd"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 1, Value: 4096, Op: specs.OpLessThan}}}
	for _, c := range []struct {
		name string
		sc   specs.LinuxSeccomp
		want bool
	}{
		{"denylist naming it", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{errnoGetcwd}}, true},
		{"denylist without it", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActErrno}}}, false},
		{"allowlist with it", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{allowGetcwd}}, false},
		{"allowlist without it", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}, true},
		{"allowed only with conditions", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{condGetcwd}}, true},
		{"allowed, then denied", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{allowGetcwd, errnoGetcwd}}, true},
		{"log is allow", specs.LinuxSeccomp{DefaultAction: specs.ActLog}, false},
	} {
		if got := seccompMayDeny(&c.sc, "getcwd"); got != c.want {
			t.Errorf("%s: seccompMayDeny = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLateSeccompLeavesOthersAlone(t *testing.T) {
	deny := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}}}
	s := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Seccomp: deny}}
	out := lateSeccomp(s)
	if !out.Process.NoNewPrivileges || s.Process.NoNewPrivileges {
		t.Errorf("lateSeccomp: got nnp %v, input changed to %v; want a copy with noNewPrivileges", out.Process.NoNewPrivileges, s.Process.NoNewPrivileges)
	}
	harmless := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}}}
	if lateSeccomp(harmless) != harmless {
		t.Error("lateSeccomp changed a profile that denies the init nothing")
	}
}

func TestAdaptSpecFifo(t *testing.T) {
	s := &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{
		{Path: "/dev/f", Type: "p", Major: 8, Minor: 666},
		{Path: "/dev/c", Type: "c", Major: 1, Minor: 3},
	}}}
	out := adaptSpec(s)
	if d := out.Linux.Devices[0]; d.Major != 0 || d.Minor != 0 {
		t.Errorf("fifo kept %d:%d", d.Major, d.Minor)
	}
	if d := out.Linux.Devices[1]; d.Major != 1 || d.Minor != 3 {
		t.Errorf("char device changed to %d:%d", d.Major, d.Minor)
	}
	if s.Linux.Devices[0].Major != 8 {
		t.Error("adaptSpec changed its input")
	}
}

func TestDeferRlimits(t *testing.T) {
	s := &specs.Spec{Process: &specs.Process{Rlimits: []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Hard: 10, Soft: 10}, {Type: "RLIMIT_AS", Hard: 2 << 30, Soft: 1 << 30},
	}}}
	out, kept := deferRlimits(s)
	if len(out.Process.Rlimits) != 1 || out.Process.Rlimits[0].Type != "RLIMIT_NOFILE" {
		t.Errorf("rlimits left for libcontainer: %+v", out.Process.Rlimits)
	}
	if len(kept) != 1 || kept[0].Type != "RLIMIT_AS" || kept[0].Soft != 1<<30 {
		t.Errorf("kept back: %+v", kept)
	}
	if len(s.Process.Rlimits) != 2 {
		t.Error("deferRlimits changed its input")
	}
}

package policy

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestBuiltinSeccompSize(t *testing.T) {
	s := BuiltinSeccomp(SeccompOptions{})
	n := AllowedSyscallCount(s)
	if n > 150 {
		t.Errorf("built-in allowlist lets %d syscalls through, target is at most 150", n)
	}
	if n < 80 {
		t.Errorf("built-in allowlist lets only %d syscalls through: busybox, Python and Go need more", n)
	}
	if s.DefaultAction != specs.ActKillProcess {
		t.Errorf("default action %s, want %s", s.DefaultAction, specs.ActKillProcess)
	}
	t.Logf("built-in allowlist: %d syscalls", n)
}

func TestBuiltinSeccompNoDangerousAllow(t *testing.T) {
	for _, o := range []SeccompOptions{{}, {DenyMemfd: true}, {AllowNetlinkRoute: true}} {
		s := BuiltinSeccomp(o)
		allowed := map[string]bool{}
		for _, sc := range s.Syscalls {
			if sc.Action == specs.ActAllow {
				for _, n := range sc.Names {
					allowed[n] = true
				}
			}
		}
		for _, bad := range []string{"mount", "umount2", "fsopen", "fsmount", "move_mount", "open_tree", "pivot_root",
			"ptrace", "process_vm_readv", "process_vm_writev", "keyctl", "add_key", "request_key", "bpf",
			"perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
			"kexec_load", "init_module", "finit_module", "delete_module", "reboot", "swapon", "clock_settime",
			"settimeofday", "unshare", "setns", "clone3"} {
			if allowed[bad] {
				t.Errorf("%+v: %s is allowed", o, bad)
			}
		}
		if o.DenyMemfd && allowed["memfd_create"] {
			t.Errorf("strict profile allows memfd_create")
		}
	}
}

func TestBuiltinSeccompCloneFilter(t *testing.T) {
	s := BuiltinSeccomp(SeccompOptions{})
	for _, sc := range s.Syscalls {
		if len(sc.Names) == 1 && sc.Names[0] == "clone" {
			if sc.Action != specs.ActAllow || len(sc.Args) != 1 || sc.Args[0].Op != specs.OpMaskedEqual || sc.Args[0].Value != cloneNamespaceFlags || sc.Args[0].ValueTwo != 0 {
				t.Fatalf("clone rule %+v does not refuse namespace flags", sc)
			}
			return
		}
	}
	t.Fatal("no clone rule")
}

// TestAllowAllExcept checks the ioctl rules by evaluating them: every
// command is allowed except the denied ones, whatever the upper 32 bits.
func TestAllowAllExcept(t *testing.T) {
	rules := allowAllExcept("ioctl", 1, deniedIoctls)
	allowed := func(x uint64) bool {
		for _, r := range rules {
			a := r.Args[0]
			if x&a.Value == a.ValueTwo {
				return true
			}
		}
		return false
	}
	for _, d := range deniedIoctls {
		for _, hi := range []uint64{0, 1 << 32, 0xffffffff << 32} {
			if allowed(d | hi) {
				t.Errorf("%#x allowed", d|hi)
			}
		}
	}
	for _, x := range []uint64{0, 0x5401, 0x5413, 0x541b, 0x541d, 0x5410, 0x541a, 0x5416, 0x80045430, 0xffffffff, 1 << 32} {
		if !allowed(x) {
			t.Errorf("%#x refused", x)
		}
	}
	for x := uint64(0x5400); x < 0x5500; x++ {
		want := x != 0x5412 && x != 0x541c
		if allowed(x) != want {
			t.Errorf("%#x: allowed %v", x, allowed(x))
		}
	}
}

package seccomp

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestBuiltinSize(t *testing.T) {
	s := Builtin(Options{})
	n := AllowedSyscallCount(s)
	// ~150 is a guide, not a law: what ordinary programs need goes in
	// (integration/corpus_test.go runs them), and the legacy aliases of
	// allowed calls cost nothing. The bound catches a careless bulk
	// addition.
	if n > 185 {
		t.Errorf("built-in allowlist lets %d syscalls through, target is about 180", n)
	}
	if n < 80 {
		t.Errorf("built-in allowlist lets only %d syscalls through: busybox, Python and Go need more", n)
	}
	if s.DefaultAction != specs.ActKillProcess {
		t.Errorf("default action %s, want %s", s.DefaultAction, specs.ActKillProcess)
	}
	t.Logf("built-in allowlist: %d syscalls", n)
}

func TestBuiltinNoDangerousAllow(t *testing.T) {
	for _, o := range []Options{{}, {DenyMemfd: true}, {AllowNetlinkRoute: true}} {
		s := Builtin(o)
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
			"settimeofday", "unshare", "setns", "clone3", "setuid", "setgid", "setreuid", "setregid", "setgroups",
			"setfsuid", "setfsgid", "pkey_alloc", "pkey_mprotect", "execveat", "open_by_handle_at"} {
			if allowed[bad] {
				t.Errorf("%+v: %s is allowed", o, bad)
			}
		}
		if o.DenyMemfd && allowed["memfd_create"] {
			t.Errorf("strict profile allows memfd_create")
		}
		for _, sc := range s.Syscalls {
			for _, n := range sc.Names {
				if sc.Action == specs.ActAllow && len(sc.Args) == 0 && (n == "memfd_create" || n == "socketpair" || n == "socket" || n == "clone" || n == "ioctl" || n == "setresuid" || n == "setresgid" ||
					n == "chmod" || n == "fchmod" || n == "fchmodat" || n == "creat" || n == "open" || n == "openat") {
					t.Errorf("%+v: %s is allowed without argument checks", o, n)
				}
			}
		}
	}
}

func TestBuiltinCloneFilter(t *testing.T) {
	s := Builtin(Options{})
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

// evalArgs lists the actions of every rule of s for the syscall name (by
// itself) with argument checks that match args, so that overlaps show;
// matching is ruleMatches, the function Evaluate uses.
func evalArgs(s *specs.LinuxSeccomp, name string, args ...uint64) []specs.LinuxSeccompAction {
	var a [6]uint64
	copy(a[:], args)
	var acts []specs.LinuxSeccompAction
	for _, r := range s.Syscalls {
		if len(r.Names) != 1 || r.Names[0] != name || len(r.Args) == 0 {
			continue
		}
		if ruleMatches(r, a) {
			acts = append(acts, r.Action)
		}
	}
	return acts
}

// TestIoctlAllowlist checks the ioctl rules by evaluating them: exactly the
// listed commands are allowed, whatever the upper 32 bits (which the kernel
// ignores); every other command matches exactly one EPERM rule (refused,
// never killed); TIOCSTI and TIOCLINUX are refused.
func TestIoctlAllowlist(t *testing.T) {
	s := Builtin(Options{})
	allowed := map[uint64]bool{}
	for _, c := range allowedIoctls {
		allowed[c] = true
	}
	for _, c := range neverIoctls {
		if allowed[c] {
			t.Fatalf("%#x is in the allowlist", c)
		}
	}
	check := func(x uint64) {
		acts := evalArgs(s, "ioctl", 0, x)
		want := specs.ActErrno
		if allowed[x&0xffffffff] {
			want = specs.ActAllow
		}
		if len(acts) != 1 || acts[0] != want {
			t.Errorf("ioctl %#x: rules %v, want exactly one %s", x, acts, want)
		}
	}
	var samples []uint64
	for x := uint64(0); x < 0x10000; x++ {
		samples = append(samples, x)
	}
	for _, c := range append(append([]uint64{}, allowedIoctls...), neverIoctls...) {
		for d := uint64(0); d < 4; d++ {
			samples = append(samples, c+d, c-d, c^0x80000000, c|0x40000000)
		}
	}
	samples = append(samples, 0x80045430, 0x40049409, 0xc020660b, 0xffffffff, 0x7fffffff)
	for _, x := range samples {
		for _, hi := range []uint64{0, 1 << 32, 0xffffffff << 32} {
			check(x | hi)
		}
	}
	for _, rule := range s.Syscalls {
		if rule.Names[0] == "ioctl" && rule.Action == specs.ActErrno && (rule.ErrnoRet == nil || *rule.ErrnoRet != 1) {
			t.Errorf("ioctl refusal %+v is not EPERM", rule)
		}
	}
	t.Logf("%d ioctl commands allowed, %d refusal rules", len(allowedIoctls), len(complementCubes(allowedIoctls)))
}

// TestComplementCubes: the cubes cover exactly the complement, disjointly,
// for small sets where every 16-bit value can be checked.
func TestComplementCubes(t *testing.T) {
	for _, set := range [][]uint64{{0}, {0xffff}, {1, 2, 3}, {0x5401, 0x5402, 0x8912, 0x1234}, {7, 7}} {
		cubes := complementCubes(set)
		in := map[uint64]bool{}
		for _, v := range set {
			in[v] = true
		}
		for x := uint64(0); x < 0x10000; x++ {
			n := 0
			for _, c := range cubes {
				if x&c.mask == c.value {
					n++
				}
			}
			if want := map[bool]int{true: 0, false: 1}[in[x]]; n != want {
				t.Fatalf("set %#x: %#x is in %d cubes, want %d", set, x, n, want)
			}
		}
	}
}

// TestInetSocketRules: TCP and UDP pass, with the type flags; SCTP, DCCP,
// raw, MPTCP and ICMP sockets are refused with EPERM; the two never overlap.
func TestInetSocketRules(t *testing.T) {
	s := Builtin(Options{})
	const nb, cx = unix.SOCK_NONBLOCK, unix.SOCK_CLOEXEC
	cases := []struct {
		fam, typ, proto uint64
		want            specs.LinuxSeccompAction
	}{
		{unix.AF_INET, unix.SOCK_STREAM, 0, specs.ActAllow},
		{unix.AF_INET, unix.SOCK_STREAM | nb | cx, unix.IPPROTO_TCP, specs.ActAllow},
		{unix.AF_INET6, unix.SOCK_DGRAM | cx, unix.IPPROTO_UDP, specs.ActAllow},
		{unix.AF_INET6, unix.SOCK_DGRAM, 0, specs.ActAllow},
		{unix.AF_UNIX, unix.SOCK_SEQPACKET, 0, specs.ActAllow},
		{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP, specs.ActErrno},
		{unix.AF_INET, unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP, specs.ActErrno},
		{unix.AF_INET6, unix.SOCK_DCCP, 0, specs.ActErrno},
		{unix.AF_INET, unix.SOCK_DCCP | nb, unix.IPPROTO_DCCP, specs.ActErrno},
		{unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP, specs.ActErrno},
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, specs.ActErrno},
		{unix.AF_INET6, unix.SOCK_STREAM | cx, unix.IPPROTO_MPTCP, specs.ActErrno},
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE, specs.ActErrno},
	}
	for _, c := range cases {
		acts := evalArgs(s, "socket", c.fam, c.typ, c.proto)
		if len(acts) != 1 || acts[0] != c.want {
			t.Errorf("socket(%d, %#x, %d): rules %v, want exactly one %s", c.fam, c.typ, c.proto, acts, c.want)
		}
	}
	// An upper-half bit in the type, or an unknown protocol: no rule, so
	// the default action (kill) applies; never an allow.
	for _, args := range [][3]uint64{{unix.AF_INET, 1<<32 | unix.SOCK_STREAM, 0}, {unix.AF_INET, unix.SOCK_STREAM, 99}} {
		if acts := evalArgs(s, "socket", args[0], args[1], args[2]); len(acts) != 0 {
			t.Errorf("socket%v: rules %v, want none", args, acts)
		}
	}
}

// TestGvisorClone3: the gVisor profile reports clone3 missing through
// TRACE (which runsc honours, unlike errnoRet) and kills by default.
func TestGvisorClone3(t *testing.T) {
	s := Builtin(Options{Gvisor: true})
	if s.DefaultAction != specs.ActKill {
		t.Errorf("gVisor default %s, want %s", s.DefaultAction, specs.ActKill)
	}
	found := false
	for _, r := range s.Syscalls {
		if r.Names[0] == "clone3" {
			found = true
			if r.Action != specs.ActTrace || r.ErrnoRet == nil || *r.ErrnoRet != uint(unix.ENOSYS) {
				t.Errorf("gVisor clone3 rule %+v, want SCMP_ACT_TRACE with ENOSYS", r)
			}
		}
	}
	if !found {
		t.Error("no clone3 rule")
	}
}

// TestMemfdRules: every flags value matches exactly one memfd_create rule,
// and only values with MFD_NOEXEC_SEAL and without MFD_EXEC are allowed.
func TestMemfdRules(t *testing.T) {
	s := Builtin(Options{})
	for x := uint64(0); x < 0x400; x++ {
		for _, hi := range []uint64{0, 1 << 32, 0xffffffff << 32} {
			acts := evalArgs(s, "memfd_create", 0, x|hi)
			want := specs.ActErrno
			if x&mfdNoexecSeal != 0 && x&mfdExec == 0 {
				want = specs.ActAllow
			}
			if len(acts) != 1 || acts[0] != want {
				t.Fatalf("memfd_create flags %#x: rules %v, want exactly one %s", x|hi, acts, want)
			}
		}
	}
	for _, r := range Builtin(Options{DenyMemfd: true}).Syscalls {
		if r.Names[0] == "memfd_create" && r.Action != specs.ActErrno {
			t.Errorf("strict-agent memfd_create rule %+v, want only the refusal", r)
		}
	}
}

// TestSocketpairRules: AF_UNIX only, everything else EPERM, never both.
func TestSocketpairRules(t *testing.T) {
	s := Builtin(Options{AllowNetlinkRoute: true})
	for fam := uint64(0); fam < 64; fam++ {
		for _, hi := range []uint64{0, 1 << 32} {
			acts := evalArgs(s, "socketpair", fam|hi, unix.SOCK_STREAM, 0)
			want := specs.ActErrno
			if fam|hi == unix.AF_UNIX {
				want = specs.ActAllow
			}
			if len(acts) != 1 || acts[0] != want {
				t.Errorf("socketpair(%#x): rules %v, want exactly one %s", fam|hi, acts, want)
			}
		}
	}
}

// TestSeteidRules: setresuid and setresgid pass only as seteuid and setegid
// make them, (-1, id, -1), with -1 32 or 64 bits wide; every other real
// form matches exactly one EPERM rule (refused); an id with upper-half bits
// and another low half matches none (the default kill), never an allow.
func TestSeteidRules(t *testing.T) {
	s := Builtin(Options{})
	const m1, m1x = 0xffffffff, 0xffffffffffffffff
	ids := []uint64{0, 1, 1000, 65534, 0x7fffffff, 0xfffffffe, m1, m1x, 1 << 32, 0xfffffffe << 32, 0xffffffff00000000, 0x1ffffffff}
	for _, name := range []string{"setresuid", "setresgid"} {
		for _, r := range ids {
			for _, e := range ids {
				for _, sv := range ids {
					acts := evalArgs(s, name, r, e, sv)
					var want []specs.LinuxSeccompAction
					switch {
					case r&low32 == m1 && sv&low32 == m1:
						want = []specs.LinuxSeccompAction{specs.ActAllow}
					case r < m1 || (r&low32 == m1 && sv < m1):
						want = []specs.LinuxSeccompAction{specs.ActErrno}
					}
					if len(acts) != len(want) || (len(want) == 1 && acts[0] != want[0]) {
						t.Fatalf("%s(%#x, %#x, %#x): rules %v, want %v", name, r, e, sv, acts, want)
					}
				}
			}
		}
		for _, minus1 := range []uint64{m1, m1x} {
			if v := Evaluate(s, name, [6]uint64{minus1, 0, minus1}); v.Action != specs.ActAllow {
				t.Errorf("%s(%#x, 0, %#x): %s, want allowed", name, minus1, minus1, v.Action)
			}
		}
		if v := Evaluate(s, name, [6]uint64{0, 0, 0}); v.Action != specs.ActErrno || v.Errno != uint(unix.EPERM) {
			t.Errorf("%s(0, 0, 0): %s %d, want EPERM", name, v.Action, v.Errno)
		}
	}
	for _, name := range []string{"setuid", "setgid", "setreuid", "setregid", "setgroups", "pkey_alloc"} {
		if v := Evaluate(s, name, [6]uint64{m1, m1}); v.Action != specs.ActErrno || v.Errno != uint(unix.EPERM) {
			t.Errorf("%s: %s %d, want EPERM", name, v.Action, v.Errno)
		}
	}
	if _, err := Compile(s); err != nil {
		t.Errorf("built-in profile does not compile: %v", err)
	}
}

// TestGvisorNames: the gVisor profile allows pselect6 under runsc's name
// for it too, and counts it once.
func TestGvisorNames(t *testing.T) {
	g := Builtin(Options{Gvisor: true})
	if v := Evaluate(g, "pselect", [6]uint64{}); v.Action != specs.ActAllow {
		t.Errorf("gVisor profile: pselect %s, want allowed", v.Action)
	}
	if v := Evaluate(Builtin(Options{}), "pselect", [6]uint64{}); v.Ruled {
		t.Errorf("native profile names pselect")
	}
	if g, n := AllowedSyscallCount(g), AllowedSyscallCount(Builtin(Options{})); g != n {
		t.Errorf("gVisor profile counts %d syscalls, native %d", g, n)
	}
}

// TestSetIDModeRules: a mode with S_ISUID or S_ISGID is refused with EPERM
// by chmod, fchmod, fchmodat and creat, and by open and openat when their
// flags create a file (O_CREAT, O_TMPFILE); every other mode passes, and
// open's mode without those flags is ignored, as the kernel ignores it.
// Every value matches exactly one rule (never the default kill), whatever
// the upper 32 bits, which the kernel drops.
func TestSetIDModeRules(t *testing.T) {
	for _, o := range []Options{{}, {DenyMemfd: true}, {AllowNetlinkRoute: true}} {
		s := Builtin(o)
		his := []uint64{0, 1 << 32, 0xffffffff << 32}
		check := func(name string, args []uint64, setid bool) {
			t.Helper()
			want := specs.ActAllow
			if setid {
				want = specs.ActErrno
			}
			acts := evalArgs(s, name, args...)
			if len(acts) != 1 || acts[0] != want {
				t.Fatalf("%+v: %s%#o: rules %v, want exactly one %s", o, name, args, acts, want)
			}
			if v := Evaluate(s, name, [6]uint64(append(args, make([]uint64, 6-len(args))...))); setid && v.Errno != uint(unix.EPERM) {
				t.Fatalf("%+v: %s%#o: errno %d, want EPERM", o, name, args, v.Errno)
			}
		}
		for mode := uint64(0); mode <= 0o7777; mode++ {
			for _, hi := range his {
				m := mode | hi
				setid := mode&(unix.S_ISUID|unix.S_ISGID) != 0
				check("chmod", []uint64{0, m}, setid)
				check("fchmod", []uint64{3, m}, setid)
				check("creat", []uint64{0, m}, setid)
				check("fchmodat", []uint64{3, 0, m, 0}, setid)
				if mode&0o777 != 0o755 && mode&0o777 != 0o644 {
					continue // open's flags against every set-id and sticky combination
				}
				for _, fl := range []uint64{unix.O_RDONLY, unix.O_WRONLY | unix.O_APPEND, unix.O_DIRECTORY, unix.O_PATH | unix.O_NOFOLLOW,
					unix.O_CREAT, unix.O_CREAT | unix.O_EXCL | unix.O_RDWR, unix.O_TMPFILE | unix.O_WRONLY, unix.O_TMPFILE | unix.O_CREAT,
					unix.O_TMPFILE &^ unix.O_DIRECTORY, unix.O_CREAT | unix.O_CLOEXEC | 1<<32, 0xffffffff} {
					for _, fhi := range his {
						f := fl | fhi
						creates := f&(unix.O_CREAT|unix.O_TMPFILE&^unix.O_DIRECTORY) != 0
						check("open", []uint64{0, f, m}, setid && creates)
						check("openat", []uint64{3, 0, f, m}, setid && creates)
					}
				}
			}
		}
		for _, name := range setIDModeSyscalls() {
			for _, r := range s.Syscalls {
				if slices.Contains(r.Names, name) && len(r.Args) == 0 {
					t.Errorf("%+v: %s has a rule without argument checks: %+v", o, name, r)
				}
			}
		}
	}
	for _, r := range setIDModeRules() {
		if !slices.Contains(setIDModeSyscalls(), r.Names[0]) {
			t.Errorf("setIDModeSyscalls lacks %s", r.Names[0])
		}
	}
	if _, err := Compile(Builtin(Options{})); err != nil {
		t.Errorf("built-in profile does not compile: %v", err)
	}
	// The gVisor profile leaves the modes to gVisor's own kernel (no
	// writable bind reaches the host there) and stays within runsc's
	// instruction limit: the calls are allowed, with any mode.
	g := Builtin(Options{Gvisor: true})
	for _, name := range setIDModeSyscalls() {
		if v := Evaluate(g, name, [6]uint64{0, 0o4755, 0o4755 | unix.O_CREAT, 0o4755}); v.Action != specs.ActAllow {
			t.Errorf("gVisor profile: %s %s, want allowed", name, v.Action)
		}
	}
}

// TestENOSYSRules: openat2 (its mode is in memory the filter cannot read)
// and fchmodat2 are reported missing, as clone3 is, so that libc falls
// back to the checked calls; under gVisor through TRACE, which runsc
// answers with ENOSYS (it ignores errnoRet). Neither is allowed, and a
// trace can add neither to a generated profile.
func TestENOSYSRules(t *testing.T) {
	for _, name := range []string{"clone3", "openat2", "fchmodat2"} {
		if v := Evaluate(Builtin(Options{}), name, [6]uint64{}); v.Action != specs.ActErrno || v.Errno != uint(unix.ENOSYS) {
			t.Errorf("%s: %s %d, want ENOSYS", name, v.Action, v.Errno)
		}
		if v := Evaluate(Builtin(Options{Gvisor: true}), name, [6]uint64{}); v.Action != specs.ActTrace || v.Errno != uint(unix.ENOSYS) {
			t.Errorf("gVisor %s: %s %d, want TRACE with ENOSYS", name, v.Action, v.Errno)
		}
		if IsTraceExtension(name) {
			t.Errorf("%s is a trace extension", name)
		}
		p, _ := Generate([]*Trace{{Syscalls: []string{name}}})
		if v := Evaluate(p, name, [6]uint64{}); v.Action != specs.ActErrno || v.Errno != uint(unix.ENOSYS) {
			t.Errorf("generated profile with %s traced: %s %d, want ENOSYS", name, v.Action, v.Errno)
		}
	}
}

package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// allowedIoctls is the ioctl allowlist: the commands busybox, CPython (tty,
// termios, pty, os.get_terminal_size, select, subprocess), git, perl, Go,
// libuv and an interactive terminal session were seen to issue (collected
// with strace and `nucleus policy trace`), grouped by what they are for.
// Everything else is refused with EPERM (see ioctlRules), among them
// TIOCSTI and TIOCLINUX, which inject input into or reprogram a terminal.
var allowedIoctls = []uint64{
	// termios get/set: isatty(3), stty, shells, readline, Python's termios and
	// tty (the termios2 forms are what newer C libraries call)
	unix.TCGETS, unix.TCSETS, unix.TCSETSW, unix.TCSETSF,
	unix.TCGETS2, unix.TCSETS2, unix.TCSETSW2, unix.TCSETSF2,
	// line control: tcdrain, tcsendbreak, tcflow, tcflush
	unix.TCSBRK, unix.TCSBRKP, unix.TCXONC, unix.TCFLSH,
	// job control and sessions: a shell's fg/bg, tcgetsid, login_tty and
	// pty.fork taking a controlling terminal, daemons giving it up
	unix.TIOCGPGRP, unix.TIOCSPGRP, unix.TIOCGSID, unix.TIOCSCTTY, unix.TIOCNOTTY,
	// window size: ls, less, vi, os.get_terminal_size, a resized terminal
	unix.TIOCGWINSZ, unix.TIOCSWINSZ,
	// bytes queued on a tty, pipe or socket (TIOCINQ is FIONREAD and
	// SIOCINQ; TIOCOUTQ is SIOCOUTQ)
	unix.TIOCINQ, unix.TIOCOUTQ,
	// descriptor flags: libuv and others set O_NONBLOCK and close-on-exec
	// this way
	fionbio, fioclex, fionclex,
	// pseudo-terminals: openpty, posix_openpt, grantpt, unlockpt, ptsname
	unix.TIOCGPTN, unix.TIOCSPTLCK, unix.TIOCGPTPEER,
	// network interfaces, read only: if_nametoindex, if_indextoname and
	// the legacy getifaddrs path
	unix.SIOCGIFNAME, unix.SIOCGIFCONF, unix.SIOCGIFFLAGS, unix.SIOCGIFADDR, unix.SIOCGIFNETMASK,
	unix.SIOCGIFMTU, unix.SIOCGIFHWADDR, unix.SIOCGIFINDEX,
}

// Generic file ioctls that x/sys/unix does not name on x86_64 (the only
// architecture the profile admits).
const (
	fionclex = 0x5450
	fioclex  = 0x5451
	fionbio  = 0x5421
)

// neverIoctls must stay refused whatever is added above: TIOCSTI pushes
// bytes into a terminal's input (a sandbox typing commands into its
// caller's shell), TIOCLINUX reprograms the virtual console.
var neverIoctls = []uint64{unix.TIOCSTI, unix.TIOCLINUX}

// The kernel takes an ioctl command as a 32-bit unsigned int: every
// comparison masks the upper half off, so setting those bits changes
// nothing.
const low32 = 0xffffffff

// ioctlRules allows the commands in allowedIoctls and refuses every other
// with EPERM, not the kill of the default action: programs probe ioctls
// (TCGETS on a pipe, FICLONE before copying) and must see an error to fall
// back. EPERM rather than ENOTTY because it is what the gVisor engine's runsc
// returns for every refusal (it ignores errnoRet), so both engines say the
// same, and because it tells a policy refusal apart from the kernel's own
// ENOTTY for a descriptor that lacks the command.
//
// libseccomp cannot say "any other value" next to conditional rules (an
// unconditional rule replaces them), so the refusal is written as the
// complement of the allowlist: masked equalities that together cover every
// other 32-bit value, disjoint from the allowed ones, so that rule order
// never matters.
func ioctlRules() []specs.LinuxSyscall {
	eperm := uint(unix.EPERM)
	rule := func(act specs.LinuxSeccompAction, mask, value uint64) specs.LinuxSyscall {
		r := specs.LinuxSyscall{Names: []string{"ioctl"}, Action: act,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: mask, ValueTwo: value, Op: specs.OpMaskedEqual}}}
		if act == specs.ActErrno {
			r.ErrnoRet = &eperm
		}
		return r
	}
	var rules []specs.LinuxSyscall
	for _, cmd := range allowedIoctls {
		rules = append(rules, rule(specs.ActAllow, low32, cmd&low32))
	}
	for _, c := range complementCubes(allowedIoctls) {
		rules = append(rules, rule(specs.ActErrno, c.mask, c.value))
	}
	return rules
}

// cube is the set of 32-bit values x with x&mask == value.
type cube struct{ mask, value uint64 }

// complementCubes returns pairwise disjoint cubes whose union is every
// 32-bit value outside set. It walks a binary decision tree over the bits:
// a bit on which all remaining values agree sends the other side to one
// cube; otherwise it splits on the bit that divides the values most evenly.
func complementCubes(set []uint64) []cube {
	var out []cube
	var walk func(vals []uint64, mask, value uint64)
	walk = func(vals []uint64, mask, value uint64) {
		for bit := uint64(1); bit <= 1<<31; bit <<= 1 {
			if mask&bit != 0 {
				continue
			}
			agree := true
			for _, v := range vals[1:] {
				if (v^vals[0])&bit != 0 {
					agree = false
					break
				}
			}
			if agree {
				out = append(out, cube{mask | bit, value | (^vals[0] & bit)})
				mask, value = mask|bit, value|(vals[0]&bit)
			}
		}
		if mask == low32 {
			return // vals is the one value left: nothing outside it here
		}
		best, bestScore := uint64(0), -1
		for bit := uint64(1); bit <= 1<<31; bit <<= 1 {
			if mask&bit != 0 {
				continue
			}
			ones := 0
			for _, v := range vals {
				if v&bit != 0 {
					ones++
				}
			}
			if score := min(ones, len(vals)-ones); score > bestScore {
				best, bestScore = bit, score
			}
		}
		var zeros, ones []uint64
		for _, v := range vals {
			if v&best != 0 {
				ones = append(ones, v)
			} else {
				zeros = append(zeros, v)
			}
		}
		walk(zeros, mask|best, value)
		walk(ones, mask|best, value|best)
	}
	seen := map[uint64]bool{}
	var vals []uint64
	for _, v := range set {
		if !seen[v&low32] {
			seen[v&low32] = true
			vals = append(vals, v&low32)
		}
	}
	if len(vals) == 0 {
		return []cube{{0, 0}}
	}
	walk(vals, 0, 0)
	return out
}

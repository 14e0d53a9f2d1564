package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// allowedSyscalls is the built-in allowlist: what busybox, coreutils,
// CPython (threads, subprocess, multiprocessing, asyncio, ssl, sqlite3),
// git, gcc and make, perl, node, Go programs and static binaries of older
// glibc use (integration/corpus_test.go runs them all), and nothing that
// reaches kernel attack surface an agent's code has no need for. A comment
// line per group says why it is here. Syscalls that need argument checks
// are written as rules in Builtin instead.
var allowedSyscalls = []string{
	// files and descriptors: glibc and Go use the *at forms (openat and
	// the chmod family: setIDModeRules; openat2: ENOSYS in Builtin)
	"read", "write", "readv", "writev", "pread64", "pwrite64",
	"close", "close_range", "lseek", "dup", "dup2", "dup3", "fcntl", "flock",
	"fstat", "newfstatat", "statx", "statfs", "fstatfs",
	"faccessat", "faccessat2", "readlink", "readlinkat", "getdents64", "getcwd", "chdir", "fchdir",
	"mkdirat", "unlinkat", "renameat", "linkat", "symlinkat",
	// legacy x86_64 forms static and older binaries (busybox, make) call: the *at forms' kernel paths
	// (mkdir and mkdirat need no mode check: the kernel never sets S_ISUID or S_ISGID from their mode)
	"access", "chown", "lchown", "link", "mkdir", "rename", "rmdir", "symlink", "unlink",
	"utime", "utimes", "futimesat", "stat", "lstat", "getdents",
	"fchown", "fchownat",
	"truncate", "ftruncate", "fallocate", "fsync", "fdatasync", "umask", "utimensat",
	// read-ahead advice on a file the caller has open: coreutils cat, sort and tr give it on every input
	"fadvise64",
	// pipes and in-kernel copies between the caller's descriptors (pipe: pipe2 for older binaries)
	"pipe", "pipe2", "copy_file_range", "sendfile",
	// waiting on descriptors, every event loop's core (epoll_create: epoll_create1 for older binaries)
	"poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	// descriptors for the caller's own events, timers and signals, which event loops wait on
	"eventfd", "eventfd2", "timerfd_create", "timerfd_settime", "timerfd_gettime", "signalfd", "signalfd4",
	// inotify watches on paths the caller can already read (coreutils tail -f, file watchers)
	"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	// the caller's own memory
	"mmap", "munmap", "mprotect", "mremap", "madvise", "brk",
	// processes and threads (clone is filtered below; fork is clone(SIGCHLD): no namespace flags)
	"fork", "vfork", "execve", "exit", "exit_group", "wait4", "waitid", "kill", "tgkill",
	"getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid",
	"setsid", "setpgid", "getpgid", "getpgrp",
	"arch_prctl", "set_tid_address", "set_robust_list", "rseq", "futex", "sched_yield", "sched_getaffinity",
	"getrlimit", "setrlimit", "getrusage", "uname", "sysinfo",
	"pidfd_open", "pidfd_send_signal",
	// reading capability sets, all empty in a sandbox (node checks its own at start-up)
	"capget",
	// time (the time syscall: static binaries of glibc before 2.31 had no vDSO)
	"time", "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "alarm", "setitimer",
	// the caller's own signal handling
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "sigaltstack", "pause", "restart_syscall",
	// randomness (Python, OpenSSL, node seed from it)
	"getrandom",
	// sockets (socket, socketpair filtered below); glibc's accept() is accept (busybox nc -l, httpd)
	"bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
	"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "setsockopt", "getsockopt", "shutdown",
	// Landlock (the pre-exec step) and seccomp (libseccomp probes it) only take rights away
	"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "seccomp",
}

// deniedWithEPERM are refused with an error instead of killing the process,
// because ordinary programs probe them and fall back (and tests can observe
// the refusal). Everything not allowed and not listed here kills the process.
var deniedWithEPERM = []string{
	// mounts, root changes and namespaces: the sandbox's view of the system is fixed
	"mount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "pivot_root", "chroot",
	"mount_setattr", "unshare", "setns",
	// reaching into other processes
	"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise",
	// kernel keyrings, shared beyond the sandbox
	"keyctl", "add_key", "request_key",
	// eBPF, perf events, userfaultfd and io_uring: large kernel surface with a history of escapes
	"bpf", "perf_event_open", "userfaultfd",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	// the kernel itself, the machine and its clock
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	// identity changes (setresuid and setresgid: seteidRules)
	"setuid", "setgid", "setreuid", "setregid", "setgroups", "setfsuid", "setfsgid",
	// capabilities, device nodes, accounting, the kernel log, file handles, I/O ports, execution domains
	"capset", "mknod", "mknodat", "acct", "quotactl", "syslog", "name_to_handle_at", "open_by_handle_at",
	"lookup_dcookie", "vhangup", "iopl", "ioperm", "personality",
	// memory protection keys: node (V8) probes pkey_alloc and does without
	"pkey_alloc", "pkey_free", "pkey_mprotect",
}

// Namespace-creating clone flags: a sandboxed process must not make new
// namespaces (new user namespaces are the classic kernel attack surface).
const cloneNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// prctl options a workload may use: naming, death signal, reading its own
// security state, no_new_privs (which only tightens).
var allowedPrctl = []uint64{
	unix.PR_SET_PDEATHSIG, unix.PR_GET_PDEATHSIG, unix.PR_GET_DUMPABLE, unix.PR_SET_DUMPABLE,
	unix.PR_SET_NAME, unix.PR_GET_NAME, unix.PR_GET_SECCOMP, unix.PR_CAPBSET_READ,
	unix.PR_SET_NO_NEW_PRIVS, unix.PR_GET_NO_NEW_PRIVS, unix.PR_GET_KEEPCAPS, unix.PR_SET_VMA,
	unix.PR_GET_TIMERSLACK, unix.PR_SET_TIMERSLACK, unix.PR_CAP_AMBIENT,
}

// personality values a workload may set: Linux and the "query" value.
var allowedPersonality = []uint64{0x0, 0x0008, 0x20000, 0x20008, 0xffffffff}

// Options tune the built-in profile for a mode.
type Options struct {
	// DenyMemfd refuses memfd_create (strict-agent): no executable
	// anonymous files.
	DenyMemfd bool
	// AllowNetlinkRoute permits AF_NETLINK/NETLINK_ROUTE sockets, which a
	// network other than "none" needs for address lookups.
	AllowNetlinkRoute bool
	// Gvisor writes the profile for runsc: KILL (gVisor's seccomp knows no
	// KILL_PROCESS) as the default action, and clone3's ENOSYS as
	// SCMP_ACT_TRACE, because runsc up to 20221219 ignores errnoRet and
	// answers every SCMP_ACT_ERRNO with EPERM, on which glibc's
	// pthread_create fails instead of falling back to clone. With no tracer
	// attached, TRACE fails the call with ENOSYS in both Linux and gVisor,
	// and none can attach: ptrace is refused.
	Gvisor bool
}

// Builtin returns the built-in allowlist profile in OCI form.
func Builtin(o Options) *specs.LinuxSeccomp {
	eperm := uint(unix.EPERM)
	enosys := uint(unix.ENOSYS)
	eafnosupport := uint(unix.EAFNOSUPPORT)
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActKillProcess,
		// Only native x86_64: x32 and i386 entry points are refused
		// (killed), closing the compat-syscall bypasses.
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{
			{Names: append([]string(nil), allowedSyscalls...), Action: specs.ActAllow},
			{Names: append([]string(nil), deniedWithEPERM...), Action: specs.ActErrno, ErrnoRet: &eperm},
			// clone3 passes its flags, openat2 its mode, in memory that
			// seccomp cannot read: report them missing so libc and Go
			// fall back to clone and openat, whose arguments are checked.
			// fchmodat2 (Linux 6.6, glibc 2.39's lchmod) too: glibc falls
			// back to fchmodat. (A libseccomp or runsc that does not know
			// a name drops its rule, and the call meets the default action:
			// libseccomp 2.5.4 knows no fchmodat2, runsc 20221219 neither
			// it nor openat2.)
			{Names: []string{"clone3", "openat2", "fchmodat2"}, Action: specs.ActErrno, ErrnoRet: &enosys},
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: cloneNamespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual},
			}},
		},
	}
	if o.DenyMemfd {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"memfd_create"}, Action: specs.ActErrno, ErrnoRet: &eperm})
	} else {
		s.Syscalls = append(s.Syscalls, memfdRules()...)
	}
	s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: unix.AF_UNIX, Op: specs.OpEqualTo}}})
	// socketpair: Unix sockets only (the other families that implement it
	// at all have no business in a sandbox); the rest is refused with an
	// error, as socket's families are.
	s.Syscalls = append(s.Syscalls,
		specs.LinuxSyscall{Names: []string{"socketpair"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: unix.AF_UNIX, Op: specs.OpEqualTo}}},
		specs.LinuxSyscall{Names: []string{"socketpair"}, Action: specs.ActErrno, ErrnoRet: &eperm,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: unix.AF_UNIX, Op: specs.OpNotEqual}}})
	s.Syscalls = append(s.Syscalls, inetSocketRules()...)
	if o.AllowNetlinkRoute {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: unix.AF_NETLINK, Op: specs.OpEqualTo},
				{Index: 2, Value: unix.NETLINK_ROUTE, Op: specs.OpEqualTo},
			}})
	}
	// Families programs commonly probe get an error instead of a kill.
	for _, fam := range []uint64{unix.AF_NETLINK, unix.AF_PACKET, unix.AF_ALG, unix.AF_VSOCK, unix.AF_KEY, unix.AF_XDP, unix.AF_BLUETOOTH} {
		if fam == unix.AF_NETLINK && o.AllowNetlinkRoute {
			continue
		}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: &eafnosupport,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: fam, Op: specs.OpEqualTo}}})
	}
	s.Syscalls = append(s.Syscalls, ownLimitRules()...)
	s.Syscalls = append(s.Syscalls, renameRules()...)
	for _, opt := range allowedPrctl {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"prctl"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: opt, Op: specs.OpEqualTo}}})
	}
	for _, p := range allowedPersonality {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: p, Op: specs.OpEqualTo}}})
	}
	s.Syscalls = append(s.Syscalls, ioctlRules()...)
	s.Syscalls = append(s.Syscalls, seteidRules()...)
	if o.Gvisor {
		// Under gVisor the sandbox's files live in gVisor's kernel: no
		// writable bind reaches the host (policy.checkWorkspaceOwnership)
		// and copy-in-out strips set-id bits. And runsc compiles this
		// profile into at most 4096 instructions, of which the ioctl
		// rules leave about a hundred: fewer than the mode rules take.
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: setIDModeSyscalls(), Action: specs.ActAllow})
	} else {
		s.Syscalls = append(s.Syscalls, setIDModeRules()...)
	}
	if o.Gvisor {
		s.DefaultAction = specs.ActKill
		for i := range s.Syscalls {
			if r := s.Syscalls[i]; r.Action == specs.ActErrno && r.ErrnoRet != nil && *r.ErrnoRet == enosys {
				s.Syscalls[i].Action = specs.ActTrace
			}
			for _, n := range s.Syscalls[i].Names {
				if alias, ok := runscNames[n]; ok {
					s.Syscalls[i].Names = append(s.Syscalls[i].Names, alias)
				}
			}
		}
	}
	return s
}

// memfd_create flags (linux/memfd.h; kernel 6.3).
const (
	mfdNoexecSeal = 0x0008
	mfdExec       = 0x0010
)

// memfdRules allow memfd_create only with MFD_NOEXEC_SEAL (and never with
// MFD_EXEC): such a memfd is created without execute permission and sealed
// with F_SEAL_EXEC, so its mode can never gain it. Any other memfd would
// let a sandbox run a binary it wrote (execve of /proc/self/fd/N, fexecve,
// execveat) past Landlock, which forbids exec only beneath paths. The other
// flags are free. The four masked equalities are disjoint and cover every
// value, so the refusal is an EPERM, never the default kill. Kernels before
// 6.3 don't know the flag and answer EINVAL.
func memfdRules() []specs.LinuxSyscall {
	eperm := uint(unix.EPERM)
	rule := func(act specs.LinuxSeccompAction, value uint64) specs.LinuxSyscall {
		r := specs.LinuxSyscall{Names: []string{"memfd_create"}, Action: act,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: mfdNoexecSeal | mfdExec, ValueTwo: value, Op: specs.OpMaskedEqual}}}
		if act == specs.ActErrno {
			r.ErrnoRet = &eperm
		}
		return r
	}
	return []specs.LinuxSyscall{
		rule(specs.ActAllow, mfdNoexecSeal),
		rule(specs.ActErrno, 0),
		rule(specs.ActErrno, mfdExec),
		rule(specs.ActErrno, mfdNoexecSeal|mfdExec),
	}
}

// seteidRules allow setresuid and setresgid only in the form seteuid(3)
// and setegid(3) give them, (-1, id, -1): glibc's posix_spawn makes it in
// the child for POSIX_SPAWN_RESETIDS, which GNU make asks for on every job.
// Without CAP_SETUID and CAP_SETGID (a sandbox has no capability) the
// kernel lets id be only one of the caller's own ids, so the call changes
// nothing. Every other real form is refused with EPERM, as the rest of the
// set*id family is. The kernel reads the ids as 32 bits and glibc leaves
// -1 32 bits wide while Go and musl widen it to 64, so "unchanged" is the
// low half all ones; an id with upper-half bits set (which no libc makes)
// matches no rule and meets the default kill, as for socket's type.
func seteidRules() []specs.LinuxSyscall {
	eperm := uint(unix.EPERM)
	unchanged := func(index uint) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: index, Value: low32, ValueTwo: low32, Op: specs.OpMaskedEqual}
	}
	anID := func(index uint) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: index, Value: low32, Op: specs.OpLessThan}
	}
	var rules []specs.LinuxSyscall
	for _, name := range []string{"setresuid", "setresgid"} {
		rules = append(rules,
			specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{unchanged(0), unchanged(2)}},
			specs.LinuxSyscall{Names: []string{name}, Action: specs.ActErrno, ErrnoRet: &eperm, Args: []specs.LinuxSeccompArg{anID(0)}},
			specs.LinuxSyscall{Names: []string{name}, Action: specs.ActErrno, ErrnoRet: &eperm, Args: []specs.LinuxSeccompArg{unchanged(0), anID(2)}})
	}
	return rules
}

// File mode bits the sandbox may never set: S_ISUID and S_ISGID.
const setIDBits = unix.S_ISUID | unix.S_ISGID

// setIDModeRules refuse with EPERM every call that would give a file a
// set-id mode and allow the same calls with any other mode. A bind-rw
// workspace is the host's own directory: a set-id file the sandbox left
// there (owned by the workspace's owner, the mount nosuid only inside)
// would run as that owner for every host user. The mode argument: chmod,
// fchmod and creat take it second, fchmodat third; open and openat (mode
// third and fourth) use it only when the flags ask to create a file
// (O_CREAT, or O_TMPFILE, whose file linkat can name), so a mode there
// without those flags, which the kernel ignores, passes. mkdir and mkdirat
// are left alone: the kernel masks both bits off their mode (a directory
// gets S_ISGID only from a setgid parent, and a file never inherits it).
// The kernel reads the mode and the flags as 32 bits or fewer and both
// masks lie in the low half, so upper-half bits change nothing, as for the
// kernel. Each syscall's rules are disjoint masked equalities covering
// every value (allowed: no set-id bit; refused: S_ISUID set, or S_ISGID
// set without it), so one rule decides every call, never the default kill.
func setIDModeRules() []specs.LinuxSyscall {
	eperm := uint(unix.EPERM)
	modeClean := func(i uint) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Value: setIDBits, ValueTwo: 0, Op: specs.OpMaskedEqual}
	}
	modeSetID := func(i uint) []specs.LinuxSeccompArg {
		return []specs.LinuxSeccompArg{
			{Index: i, Value: unix.S_ISUID, ValueTwo: unix.S_ISUID, Op: specs.OpMaskedEqual},
			{Index: i, Value: setIDBits, ValueTwo: unix.S_ISGID, Op: specs.OpMaskedEqual},
		}
	}
	var rules []specs.LinuxSyscall
	add := func(name string, refuse bool, args ...specs.LinuxSeccompArg) {
		r := specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow, Args: args}
		if refuse {
			r.Action, r.ErrnoRet = specs.ActErrno, &eperm
		}
		rules = append(rules, r)
	}
	for _, c := range []struct {
		name string
		mode uint
	}{{"chmod", 1}, {"fchmod", 1}, {"fchmodat", 2}, {"creat", 1}} {
		add(c.name, false, modeClean(c.mode))
		for _, m := range modeSetID(c.mode) {
			add(c.name, true, m)
		}
	}
	// The flags that make open use its mode split three ways: neither
	// (the mode is ignored), O_CREAT (with or without __O_TMPFILE, which
	// the kernel then refuses), __O_TMPFILE alone.
	const creates = unix.O_CREAT | unix.O_TMPFILE&^unix.O_DIRECTORY
	flags := func(i uint, value uint64) specs.LinuxSeccompArg {
		mask := uint64(creates)
		if value == unix.O_CREAT {
			mask = unix.O_CREAT
		}
		return specs.LinuxSeccompArg{Index: i, Value: mask, ValueTwo: value, Op: specs.OpMaskedEqual}
	}
	for _, c := range []struct {
		name        string
		flags, mode uint
	}{{"open", 1, 2}, {"openat", 2, 3}} {
		add(c.name, false, flags(c.flags, 0))
		for _, f := range []uint64{unix.O_CREAT, creates &^ unix.O_CREAT} {
			add(c.name, false, flags(c.flags, f), modeClean(c.mode))
			for _, m := range modeSetID(c.mode) {
				add(c.name, true, flags(c.flags, f), m)
			}
		}
	}
	return rules
}

// setIDModeSyscalls are the syscalls setIDModeRules check.
func setIDModeSyscalls() []string {
	return []string{"chmod", "fchmod", "fchmodat", "creat", "open", "openat"}
}

// runscNames are runsc's own names (up to 20221219) for syscalls whose
// kernel name it does not know. runsc ignores a name it does not know, so
// the call would meet the default kill: without "pselect", glibc's select()
// and pselect() (which make pselect6) die under gVisor. The gVisor profile
// names both; libseccomp skips the name it does not know.
var runscNames = map[string]string{"pselect6": "pselect"}

// AllowedSyscallCount is how many distinct syscalls a profile lets through
// (unconditionally or under argument checks); runsc's second name for a
// syscall is not another one.
func AllowedSyscallCount(s *specs.LinuxSeccomp) int {
	if s == nil {
		return 0
	}
	seen := map[string]bool{}
	for _, sc := range s.Syscalls {
		if sc.Action != specs.ActAllow && sc.Action != specs.ActLog {
			continue
		}
		for _, n := range sc.Names {
			seen[n] = true
		}
	}
	for kernel, alias := range runscNames {
		if seen[kernel] && seen[alias] {
			delete(seen, alias)
		}
	}
	return len(seen)
}

// Internet sockets are limited to TCP and UDP: SOCK_STREAM or SOCK_DGRAM
// (SOCK_NONBLOCK and SOCK_CLOEXEC may be or-ed in) with protocol 0,
// IPPROTO_TCP or IPPROTO_UDP. Any other protocol reaches code an agent has
// no use for, and on a modular kernel makes it load the module (SCTP, DCCP,
// ...) for the caller.
var (
	inetFamilies  = []uint64{unix.AF_INET, unix.AF_INET6}
	inetTypes     = []uint64{unix.SOCK_STREAM, unix.SOCK_DGRAM}
	inetProtocols = []uint64{0, unix.IPPROTO_TCP, unix.IPPROTO_UDP}
	// Refused with EPERM rather than killed, because programs probe them
	// and fall back: raw sockets (ping, traceroute; the kernel says EPERM
	// too without CAP_NET_RAW), the other socket types, ICMP datagrams
	// (ping), MPTCP (Go listeners try it first), SCTP, DCCP and UDP-Lite.
	// Anything else is left to the default action.
	refusedInetTypes     = []uint64{unix.SOCK_RAW, unix.SOCK_RDM, unix.SOCK_SEQPACKET, unix.SOCK_DCCP, unix.SOCK_PACKET}
	refusedInetProtocols = []uint64{unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6, unix.IPPROTO_MPTCP, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP, unix.IPPROTO_UDPLITE}
)

// socketTypeMask drops the two flags from the type argument. It keeps the
// upper 32 bits, so a type with any of them set matches no rule.
const socketTypeMask = ^uint64(unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC)

// inetSocketRules writes the limits above as rules. The arguments of one
// rule are and-ed (family, type and protocol all match); the rules of a
// syscall are or-ed. Allowed and refused combinations are disjoint, so
// their order does not matter.
func inetSocketRules() []specs.LinuxSyscall {
	eperm := uint(unix.EPERM)
	family := func(f uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: 0, Value: f, Op: specs.OpEqualTo}
	}
	typ := func(t uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: 1, Value: socketTypeMask, ValueTwo: t, Op: specs.OpMaskedEqual}
	}
	proto := func(p uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: 2, Value: p, Op: specs.OpEqualTo}
	}
	var rules []specs.LinuxSyscall
	add := func(act specs.LinuxSeccompAction, args ...specs.LinuxSeccompArg) {
		r := specs.LinuxSyscall{Names: []string{"socket"}, Action: act, Args: args}
		if act == specs.ActErrno {
			r.ErrnoRet = &eperm
		}
		rules = append(rules, r)
	}
	for _, f := range inetFamilies {
		for _, t := range inetTypes {
			for _, p := range inetProtocols {
				add(specs.ActAllow, family(f), typ(t), proto(p))
			}
			for _, p := range refusedInetProtocols {
				add(specs.ActErrno, family(f), typ(t), proto(p))
			}
		}
		for _, t := range refusedInetTypes {
			add(specs.ActErrno, family(f), typ(t))
		}
	}
	return rules
}

// ownLimitRules allow prlimit64 on the caller itself (pid 0, what glibc's
// setrlimit and getrlimit pass) and refuse it on any other process. The
// kernel checks only that the uids match, not dumpability: a command could
// lower the limits of the sandbox's pid 1 (its supervisor), and every
// later exec would inherit them (an RLIMIT_NOFILE of 3 hung the host's
// nucleus exec). Reading another's limits is refused too: one rule on the
// pid alone (an errno rule on the pid and the new limit, beside an allow
// rule on the new limit, never matched here: the call met the default kill).
func ownLimitRules() []specs.LinuxSyscall {
	eperm := uint(unix.EPERM)
	return []specs.LinuxSyscall{
		{Names: []string{"prlimit64"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpEqualTo}}},
		{Names: []string{"prlimit64"}, Action: specs.ActErrno, ErrnoRet: &eperm, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpNotEqual}}},
	}
}

// renameRules allow renameat2 without RENAME_WHITEOUT, which the kernel
// lets anyone use since 5.8 and which leaves a 0:0 character device behind:
// through a bind workspace, a device node in the user's directory (an
// overlay layer's whiteout hides a file), where mknod is refused.
func renameRules() []specs.LinuxSyscall {
	eperm := uint(unix.EPERM)
	return []specs.LinuxSyscall{
		{Names: []string{"renameat2"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 4, Value: unix.RENAME_WHITEOUT, ValueTwo: 0, Op: specs.OpMaskedEqual}}},
		{Names: []string{"renameat2"}, Action: specs.ActErrno, ErrnoRet: &eperm, Args: []specs.LinuxSeccompArg{
			{Index: 4, Value: unix.RENAME_WHITEOUT, ValueTwo: unix.RENAME_WHITEOUT, Op: specs.OpMaskedEqual}}},
	}
}

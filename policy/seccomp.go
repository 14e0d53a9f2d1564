package policy

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// allowedSyscalls is the built-in allowlist: what busybox, CPython (with
// threads, subprocess and multiprocessing) and Go programs use, and nothing
// that reaches kernel attack surface an agent's code has no need for.
// Syscalls that need argument checks are listed in filteredRules instead.
var allowedSyscalls = []string{
	// files and descriptors (glibc and Go use the *at forms; most legacy
	// x86_64 entry points are left out)
	"read", "write", "readv", "writev", "pread64", "pwrite64",
	"openat", "openat2", "close", "close_range", "lseek", "dup", "dup2", "dup3", "fcntl", "flock",
	"fstat", "newfstatat", "statx", "statfs", "fstatfs",
	"faccessat", "faccessat2", "readlink", "readlinkat", "getdents64", "getcwd", "chdir", "fchdir",
	"mkdirat", "unlinkat", "renameat", "renameat2", "linkat", "symlinkat",
	// legacy entry points Debian's static busybox still calls
	"access", "chmod", "link", "mkdir", "rename", "rmdir", "symlink", "unlink",
	"fchmod", "fchmodat", "fchown", "fchownat",
	"truncate", "ftruncate", "fallocate", "fsync", "fdatasync", "umask", "utimensat",
	"pipe2", "copy_file_range", "sendfile",
	"poll", "ppoll", "select", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "eventfd2",
	// memory
	"mmap", "munmap", "mprotect", "mremap", "madvise", "brk",
	// processes and threads (clone is filtered below)
	"vfork", "execve", "exit", "exit_group", "wait4", "waitid", "kill", "tgkill",
	"getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid",
	"setsid", "setpgid", "getpgid", "getpgrp",
	"arch_prctl", "set_tid_address", "set_robust_list", "rseq", "futex", "sched_yield", "sched_getaffinity",
	"getrlimit", "setrlimit", "prlimit64", "getrusage", "uname", "sysinfo",
	"pidfd_open", "pidfd_send_signal",
	// time
	"nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "alarm", "setitimer",
	// signals
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "sigaltstack", "pause", "restart_syscall",
	// randomness
	"getrandom",
	// sockets (socket itself is filtered below)
	"socketpair", "bind", "listen", "accept4", "connect", "getsockname", "getpeername",
	"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "setsockopt", "getsockopt", "shutdown",
	// Landlock and seccomp can only take rights away; the pre-exec step
	// uses the first, libseccomp probes the second at start-up.
	"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "seccomp",
}

// deniedWithEPERM are refused with an error instead of killing the process,
// because ordinary programs probe them and fall back (and tests can observe
// the refusal). Everything not allowed and not listed here kills the process.
var deniedWithEPERM = []string{
	"mount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "pivot_root", "chroot",
	"mount_setattr", "unshare", "setns",
	"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise",
	"keyctl", "add_key", "request_key",
	"bpf", "perf_event_open", "userfaultfd",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid",
	"capset", "mknod", "mknodat", "acct", "quotactl", "syslog", "name_to_handle_at", "open_by_handle_at",
	"lookup_dcookie", "vhangup", "iopl", "ioperm", "personality",
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

// Terminal ioctls that inject input into or reprogram the controlling
// terminal (TIOCSTI, TIOCLINUX). The kernel compares only the low 32 bits of
// the command, so the filter masks them too.
var deniedIoctls = []uint64{unix.TIOCSTI, unix.TIOCLINUX}

// SeccompOptions tune the built-in profile for a mode.
type SeccompOptions struct {
	// DenyMemfd refuses memfd_create (strict-agent): no executable
	// anonymous files.
	DenyMemfd bool
	// AllowNetlinkRoute permits AF_NETLINK/NETLINK_ROUTE sockets, which a
	// network other than "none" needs for address lookups.
	AllowNetlinkRoute bool
}

// BuiltinSeccomp returns the built-in allowlist profile in OCI form.
func BuiltinSeccomp(o SeccompOptions) *specs.LinuxSeccomp {
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
			// clone3 passes its flags in memory that seccomp cannot read:
			// report it missing so libc and Go fall back to clone.
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: cloneNamespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual},
			}},
		},
	}
	if o.DenyMemfd {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"memfd_create"}, Action: specs.ActErrno, ErrnoRet: &eperm})
	} else {
		s.Syscalls[0].Names = append(s.Syscalls[0].Names, "memfd_create")
	}
	for _, fam := range []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6} {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: fam, Op: specs.OpEqualTo}}})
	}
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
	for _, opt := range allowedPrctl {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"prctl"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: opt, Op: specs.OpEqualTo}}})
	}
	for _, p := range allowedPersonality {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: p, Op: specs.OpEqualTo}}})
	}
	for _, cmd := range deniedIoctls {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: &eperm,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xffffffff, ValueTwo: cmd, Op: specs.OpMaskedEqual}}})
	}
	s.Syscalls = append(s.Syscalls, allowAllExcept("ioctl", 1, deniedIoctls)...)
	return s
}

// allowAllExcept allows a syscall unless the low 32 bits of argument idx
// are one of denied. libseccomp cannot say "not equal under a mask", and an
// unconditional allow beside a conditional errno makes the allow win, so the
// allowed set is written as a union of masked equalities: x is allowed if it
// differs from the denied values in a bit where they all agree, or, agreeing
// there, has a pattern of the remaining bits no denied value has.
func allowAllExcept(name string, idx uint, denied []uint64) []specs.LinuxSyscall {
	const low32 = 0xffffffff
	var diff uint64
	for _, d := range denied[1:] {
		diff |= (d ^ denied[0]) & low32
	}
	common := denied[0] & low32 &^ diff
	rule := func(mask, value uint64) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: idx, Value: mask, ValueTwo: value, Op: specs.OpMaskedEqual}}}
	}
	var rules []specs.LinuxSyscall
	for bit := uint64(1); bit <= 1<<31; bit <<= 1 {
		if diff&bit == 0 {
			rules = append(rules, rule(bit, ^common&bit))
		}
	}
	// Enumerate the patterns of the differing bits (submasks of diff).
	for sub := diff; ; sub = (sub - 1) & diff {
		v := common | sub
		isDenied := false
		for _, d := range denied {
			if d&low32 == v {
				isDenied = true
			}
		}
		if !isDenied {
			rules = append(rules, rule(low32, v))
		}
		if sub == 0 {
			break
		}
	}
	return rules
}

// AllowedSyscallCount is how many distinct syscalls a profile lets through
// (unconditionally or under argument checks).
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
	return len(seen)
}

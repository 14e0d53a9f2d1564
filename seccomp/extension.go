package seccomp

import "golang.org/x/sys/unix"

// traceExtensions are the syscalls a trace may add to a profile beyond the
// built-in allowlist: calls ordinary programs make whose kernel surface is
// no wider than what the allowlist already lets through. A syscall neither
// the allowlist nor this list names is refused during a trace (and never
// runs), and `policy generate` leaves it out of the profile: the traced
// code chooses what its trace contains, so a trace can only pick among
// syscalls someone has judged. Deliberately absent, with a history of
// kernel bugs or a reach beyond the sandbox: execveat (fileless exec past
// Landlock), memfd_secret, kcmp, pidfd_getfd, get_robust_list, modify_ldt,
// vmsplice, fanotify_*, sethostname, setdomainname, the setxattr and
// removexattr families, SysV IPC and POSIX message queues, sysfs,
// ioprio_set, sched_setattr, sched_setscheduler, setpriority, mbind,
// set_mempolicy, migrate_pages, move_pages, the aio io_* calls,
// futex_waitv, remap_file_pages, and the calls the allowlist refuses
// (deniedWithEPERM: mount, ptrace, the set*id family, pkey_*, acct, quotactl,
// syslog, name_to_handle_at, open_by_handle_at, iopl, ioperm, vhangup,
// lookup_dcookie, ...), which stay refused whatever a trace says.
var traceExtensions = []string{
	// variants of allowed calls: readv/writev at an offset, and tgkill
	// (fchmodat2 is not one: the built-in reports it missing, so that its
	// mode goes through fchmodat's check)
	"preadv", "pwritev", "preadv2", "pwritev2", "tkill",
	// extended attribute reads: metadata of files the caller can already
	// stat and open (no writes: setxattr and removexattr stay out)
	"getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr",
	// the epoll wait with a timespec (epoll_pwait is allowed)
	"epoll_pwait2",
	// POSIX per-process timers and the itimer read (setitimer and alarm
	// are allowed)
	"timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete", "getitimer",
	// the caller's own memory: flushing and residency of its mappings,
	// locking bounded by RLIMIT_MEMLOCK, reading its NUMA policy
	"msync", "mincore", "mlock", "mlock2", "munlock", "munlockall", "get_mempolicy",
	// scheduling reads, and pinning the caller's threads to CPUs of its
	// own cpuset
	"sched_getparam", "sched_getscheduler", "sched_getattr", "sched_setaffinity",
	"sched_get_priority_min", "sched_get_priority_max", "sched_rr_get_interval", "getpriority",
	// process information about the caller: CPU times, current CPU,
	// session
	"times", "getcpu", "getsid",
	// signals to processes kill may already reach, and the pending set
	"rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigpending",
	// writeback and read-ahead of files the caller has open (fsync and
	// fdatasync are allowed)
	"sync", "syncfs", "sync_file_range", "readahead",
	// moving data between pipes and descriptors the caller holds, in the
	// kernel (as sendfile and copy_file_range, which are allowed; vmsplice,
	// which maps user pages into a pipe, stays out)
	"splice", "tee",
	// socket calls on descriptors the allowed socket rules made
	"recvmmsg",
	// memory barriers across the caller's own threads (JITs, RCU
	// libraries)
	"membarrier",
}

// TraceExtensions returns the syscalls a trace may add to a generated
// profile beyond the built-in allowlist (see traceExtensions).
func TraceExtensions() []string {
	return append([]string(nil), traceExtensions...)
}

var traceExtensionSet = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range traceExtensions {
		m[n] = true
	}
	return m
}()

// IsTraceExtension reports whether a trace may add the syscall name to a
// profile though the built-in allowlist names it nowhere.
func IsTraceExtension(name string) bool {
	return traceExtensionSet[name]
}

// unlistedErrno is the error a syscall that neither the built-in allowlist
// nor traceExtensions names fails with, during a trace and in a generated
// profile whose trace saw it refused. (clone3, the call libc and Go fall
// back from on ENOSYS, is in the allowlist with that errno.)
const unlistedErrno = unix.EPERM

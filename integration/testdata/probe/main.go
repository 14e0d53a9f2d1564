// Command probe checks one isolation rule from inside a container and
// prints what happened: "ALLOWED", "DENIED <errno name>", or a value.
// integration tests build it statically and copy it into bundles.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func result(err error) {
	if err == nil {
		fmt.Println("ALLOWED")
		return
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		fmt.Println("DENIED", unix.ErrnoName(errno))
		return
	}
	fmt.Println("DENIED", err)
}

func rawErr(_, _ uintptr, e syscall.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// num parses a number argument (decimal or 0x hex) for a raw syscall.
func num(s string) uintptr {
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "not a number:", s)
		os.Exit(2)
	}
	return uintptr(n)
}

// netSockets opens a NETLINK_NETFILTER and a raw AF_PACKET socket and
// prints a line for each.
func netSockets() {
	for _, s := range []struct {
		name            string
		fam, typ, proto uintptr
	}{{"netlink", unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_NETFILTER}, {"packet", unix.AF_PACKET, unix.SOCK_RAW, 0}} {
		fd, _, e := unix.RawSyscall(unix.SYS_SOCKET, s.fam, s.typ, s.proto)
		if e == 0 {
			unix.Close(int(fd))
		}
		fmt.Print(s.name + ": ")
		result(rawErr(0, 0, e))
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe CHECK [ARGS]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "mount":
		os.MkdirAll("/tmp/m", 0o755)
		result(unix.Mount("tmpfs", "/tmp/m", "tmpfs", 0, ""))
	case "ptrace":
		result(rawErr(unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_ATTACH, 1, 0, 0, 0, 0)))
	case "keyctl":
		result(rawErr(unix.Syscall6(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xfffffffc), 0, 0, 0, 0)))
	case "bpf":
		result(rawErr(unix.Syscall(unix.SYS_BPF, 0, 0, 0)))
	case "io_uring":
		result(rawErr(unix.Syscall(unix.SYS_IO_URING_SETUP, 1, 0, 0)))
	case "userfaultfd":
		result(rawErr(unix.Syscall(unix.SYS_USERFAULTFD, 0, 0, 0)))
	case "unshare":
		result(unix.Unshare(unix.CLONE_NEWUSER))
	case "perf":
		result(rawErr(unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, 0, 0, 0, 0, 0, 0)))
	case "tiocsti":
		// Without the filter this fails with ENOTTY (stdin is not a
		// terminal); the filter refuses it first, also with the upper 32
		// bits of the command set, which the kernel ignores.
		c := byte('x')
		result(rawErr(unix.Syscall(unix.SYS_IOCTL, 0, uintptr(unix.TIOCSTI), uintptr(unsafe.Pointer(&c)))))
		result(rawErr(unix.Syscall(unix.SYS_IOCTL, 0, uintptr(1<<32|unix.TIOCSTI), uintptr(unsafe.Pointer(&c)))))
	case "socket":
		// socket FAMILY TYPE PROTOCOL, numbers (0x... allowed).
		fd, _, e := unix.RawSyscall(unix.SYS_SOCKET, num(os.Args[2]), num(os.Args[3]), num(os.Args[4]))
		if e == 0 {
			unix.Close(int(fd))
		}
		result(rawErr(0, 0, e))
	case "ioctl":
		// ioctl PATH CMD: the command on PATH ("-" is stdin) with a
		// zeroed buffer as its argument.
		fd := 0
		if os.Args[2] != "-" {
			var err error
			if fd, err = unix.Open(os.Args[2], unix.O_RDWR|unix.O_NOCTTY, 0); err != nil {
				fmt.Println("OPEN FAILED", err)
				return
			}
		}
		var buf [256]byte
		result(rawErr(unix.Syscall(unix.SYS_IOCTL, uintptr(fd), num(os.Args[3]), uintptr(unsafe.Pointer(&buf[0])))))
	case "memfd":
		// memfd [FLAGS]: memfd_create with FLAGS (default 0).
		flags := 0
		if len(os.Args) > 2 {
			flags = int(num(os.Args[2]))
		}
		_, err := unix.MemfdCreate("x", flags)
		result(err)
	case "memfd-exec":
		// memfd-exec FLAGS: the fileless-exec attack. Copy this binary into
		// a memfd made with FLAGS, make it executable, and run it through
		// /proc/self/fd/N (fexecve) and then execveat(fd, "", AT_EMPTY_PATH).
		// Landlock's no-exec rules never see the memfd: only the seccomp
		// filter and the memfd's own mode and seals stand in the way. A run
		// that worked prints "hello".
		fd, err := unix.MemfdCreate("x", int(num(os.Args[2])))
		if err != nil {
			fmt.Print("MEMFD ")
			result(err)
			return
		}
		self, err := os.ReadFile("/proc/self/exe")
		if err != nil {
			fmt.Println("READ FAILED", err)
			return
		}
		f := os.NewFile(uintptr(fd), "memfd")
		if _, err := f.Write(self); err != nil {
			fmt.Println("WRITE FAILED", err)
			return
		}
		fmt.Print("FCHMOD ")
		result(unix.Fchmod(fd, 0o755))
		cmd := exec.Command("/proc/self/fd/3", "hello")
		cmd.ExtraFiles = []*os.File{f}
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		fmt.Print("EXEC ")
		result(cmd.Run())
		// execveat in a child: outside the allowlist it is killed (under
		// gVisor, whose seccomp kills only the thread, the child hangs
		// and is killed after a while).
		cmd = exec.Command("/proc/self/exe", "execveat-fd3")
		cmd.ExtraFiles = []*os.File{f}
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		fmt.Print("EXECVEAT ")
		if err := cmd.Start(); err != nil {
			result(err)
			return
		}
		t := time.AfterFunc(5*time.Second, func() { cmd.Process.Kill() })
		err = cmd.Wait()
		t.Stop()
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			fmt.Println("KILLED")
		}
	case "execveat-fd3":
		a0, _ := unix.BytePtrFromString("memfd")
		a1, _ := unix.BytePtrFromString("hello")
		argv := []*byte{a0, a1, nil}
		empty, _ := unix.BytePtrFromString("")
		_, _, e := unix.Syscall6(unix.SYS_EXECVEAT, 3, uintptr(unsafe.Pointer(empty)),
			uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&[]*byte{nil}[0])), unix.AT_EMPTY_PATH, 0)
		result(e)
	case "netescape":
		// The red team's trace-poisoning workload: a new user and network
		// namespace (full capabilities there), then a netfilter netlink
		// socket and a raw packet socket in it, the way into nf_tables and
		// af_packet bugs. One line each, in this order. A Go process has
		// threads, and unshare(CLONE_NEWUSER) wants a single-threaded
		// caller: the forked child unshares before it execs the sockets
		// step (Go's SysProcAttr.Unshareflags).
		// It maps its own ids to root there, to keep the capabilities
		// across the exec; where it can't write the maps, it goes on
		// without them.
		var err error
		for _, mapped := range []bool{true, false} {
			cmd := exec.Command("/proc/self/exe", "netescape-sockets")
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNET}
			if mapped {
				cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
				cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
			}
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err = cmd.Start(); err == nil {
				fmt.Println("unshare: ALLOWED")
				cmd.Wait()
				return
			}
		}
		fmt.Print("unshare: ")
		result(err)
		netSockets()
	case "netescape-sockets":
		netSockets()
	case "unlisted":
		// Syscalls neither the built-in allowlist nor the list of those a
		// trace may add names (see seccomp/extension.go), each called with
		// harmless arguments in a child of its own (a profile that kills
		// by default kills only that child): "NAME: ALLOWED", "NAME:
		// DENIED <errno>" or "NAME: KILLED". Under a filter, ALLOWED or an
		// errno other than the filter's means the kernel ran it.
		for _, name := range unlistedCalls {
			cmd := exec.Command("/proc/self/exe", "unlisted-one", name)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			var ee *exec.ExitError
			if errors.As(err, &ee) && !ee.Exited() {
				out = []byte("KILLED\n")
			}
			fmt.Printf("%s: %s", name, out)
		}
	case "unlisted-one":
		unlistedOne(os.Args[2])
	case "socketpair":
		// socketpair FAMILY TYPE PROTOCOL, numbers.
		var fds [2]int32
		_, _, e := unix.RawSyscall6(unix.SYS_SOCKETPAIR, num(os.Args[2]), num(os.Args[3]), num(os.Args[4]), uintptr(unsafe.Pointer(&fds[0])), 0, 0)
		if e == 0 {
			unix.Close(int(fds[0]))
			unix.Close(int(fds[1]))
		}
		result(rawErr(0, 0, e))
	case "clone-newuser":
		// A namespace flag on clone is not in the allowlist: the
		// default action (kill) applies.
		_, _, e := unix.RawSyscall6(unix.SYS_CLONE, unix.CLONE_NEWUSER|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
		if e == 0 {
			os.Exit(0)
		}
		result(e)
	case "status":
		// Print the security-relevant lines of /proc/self/status.
		data, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(data), "\n") {
			for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp:", "Uid", "Gid"} {
				if strings.HasPrefix(l, k) {
					fmt.Println(strings.Join(strings.Fields(l), " "))
				}
			}
		}
	case "nnp":
		// gVisor's /proc/self/status has no NoNewPrivs line: ask prctl.
		v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
		if err != nil {
			result(err)
			return
		}
		fmt.Println("NoNewPrivs:", v)
	case "write":
		result(os.WriteFile(os.Args[2], []byte("x"), 0o644))
	case "exec":
		result(exec.Command(os.Args[2], os.Args[3:]...).Run())
	case "copy-exec":
		// Copy this binary to a path and try to run it from there.
		self, err := os.ReadFile("/proc/self/exe")
		if err == nil {
			err = os.WriteFile(os.Args[2], self, 0o755)
		}
		if err != nil {
			fmt.Println("COPY FAILED", err)
			return
		}
		result(exec.Command(os.Args[2], "hello").Run())
	case "hello":
		fmt.Println("hello")
	case "sdnotify":
		// sdnotify MSG...: one datagram each to $NOTIFY_SOCKET, as a
		// service speaking sd_notify sends them.
		for _, msg := range os.Args[2:] {
			c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
			if err == nil {
				_, err = c.Write([]byte(strings.ReplaceAll(msg, `\n`, "\n")))
				c.Close()
			}
			fmt.Print("sdnotify " + msg + ": ")
			result(err)
		}
	case "read":
		data, err := os.ReadFile(os.Args[2])
		if err != nil {
			result(err)
			return
		}
		fmt.Printf("READ %d bytes\n", len(data))
	case "work":
		// Ordinary Go work: threads, a loopback TCP echo, a subprocess.
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); _ = make([]byte, 1<<20) }()
		}
		wg.Wait()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		go func() {
			c, err := l.Accept()
			if err == nil {
				buf := make([]byte, 4)
				n, _ := c.Read(buf)
				c.Write(buf[:n])
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(1)
		}
		c.Write([]byte("ping"))
		buf := make([]byte, 4)
		n, _ := c.Read(buf)
		out, err := exec.Command("/proc/self/exe", "hello").Output()
		if err != nil {
			fmt.Println("subprocess:", err)
			os.Exit(1)
		}
		fmt.Printf("WORK OK %s %s", buf[:n], out)
	case "mode":
		// mode CALL PATH MODE [FLAGS]: one syscall that sets a file mode,
		// made raw so that MODE (numbers; 0 or 0o prefix for octal, upper
		// 32 bits allowed) reaches the kernel as given.
		modeCall(os.Args[2], os.Args[3], num(os.Args[4]), os.Args[5:])
	case "reach-init":
		// What a command exec'd into a held sandbox can get of its pid 1
		// (the supervisor, same user and user namespace): its descriptors
		// (the exec socket), its memory, its environment, a ptrace.
		// Listing the numbers may be allowed (the directory's owner is
		// the namespace's root); following or opening one must not.
		ents, err := os.ReadDir("/proc/1/fd")
		if err == nil {
			err = unix.ENOENT
			for _, e := range ents {
				_, lerr := os.Readlink("/proc/1/fd/" + e.Name())
				f, oerr := os.Open("/proc/1/fd/" + e.Name())
				if oerr == nil {
					f.Close()
				}
				if lerr == nil || oerr == nil {
					err = nil
					break
				}
				err = lerr
			}
		}
		fmt.Print("proc-fd: ")
		result(err)
		_, err = os.ReadFile("/proc/1/environ")
		fmt.Print("proc-environ: ")
		result(err)
		f, err := os.Open("/proc/1/mem")
		if err == nil {
			f.Close()
		}
		fmt.Print("proc-mem: ")
		result(err)
		_, err = os.Readlink("/proc/1/cwd")
		fmt.Print("proc-cwd: ")
		result(err)
		fmt.Print("ptrace: ")
		result(rawErr(unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_ATTACH, 1, 0, 0, 0, 0)))
	case "prlimit-init":
		// Lower pid 1's (the supervisor's) RLIMIT_FSIZE, which every
		// command it starts later would inherit; read it back.
		fmt.Print("prlimit-set-init: ")
		result(unix.Prlimit(1, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: 1, Max: 1}, nil))
		fmt.Print("prlimit-set-self: ")
		result(unix.Prlimit(0, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: 1 << 40, Max: unix.RLIM_INFINITY}, nil))
	case "whiteout":
		// renameat2(RENAME_WHITEOUT) of os.Args[2] leaves a 0:0
		// character device in its place.
		if err := os.WriteFile(os.Args[2], []byte("x"), 0o644); err != nil {
			fmt.Println("setup:", err)
			return
		}
		fmt.Print("whiteout: ")
		result(unix.Renameat2(unix.AT_FDCWD, os.Args[2], unix.AT_FDCWD, os.Args[2]+".moved", unix.RENAME_WHITEOUT))
		fmt.Print("rename-noreplace: ")
		result(unix.Renameat2(unix.AT_FDCWD, os.Args[2], unix.AT_FDCWD, os.Args[2]+".moved2", unix.RENAME_NOREPLACE))
	case "pidfd-getfd-init":
		// pidfd_getfd of pid 1's descriptor N (its exec socket).
		pidfd, err := unix.PidfdOpen(1, 0)
		fmt.Print("pidfd_open: ")
		result(err)
		if err == nil {
			fmt.Print("pidfd_getfd: ")
			result(rawErr(unix.Syscall(unix.SYS_PIDFD_GETFD, uintptr(pidfd), num(os.Args[2]), 0)))
		}
	case "fds":
		// List this process's open descriptors and what they point at:
		// none of the runtime's own (record, audit log, filter, binary)
		// may reach the workload.
		entries, _ := os.ReadDir("/proc/self/fd")
		for _, e := range entries {
			target, _ := os.Readlink("/proc/self/fd/" + e.Name())
			fmt.Printf("FD %s %s\n", e.Name(), target)
		}
	case "deny-landlock-restrict":
		// Run on the host, ahead of nucleus: a seccomp filter that
		// refuses landlock_restrict_self (as some CI sandboxes do), so
		// that the pre-exec step inside the container loses Landlock.
		runtime.LockOSThread()
		prog := []unix.SockFilter{
			{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0},
			{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_LANDLOCK_RESTRICT_SELF},
			{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
			{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		}
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
			fmt.Fprintln(os.Stderr, "seccomp:", err)
			os.Exit(2)
		}
		err := syscall.Exec(os.Args[2], os.Args[2:], os.Environ())
		fmt.Fprintln(os.Stderr, "exec:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "unknown check", os.Args[1])
		os.Exit(2)
	}
}

// unlistedCalls are the syscalls `probe unlisted` tries, in this order.
var unlistedCalls = []string{"kcmp", "pidfd_getfd", "modify_ldt", "memfd_secret", "vmsplice",
	"execveat", "setxattr", "sysfs", "shmget", "fanotify_init", "ioprio_set"}

// unlistedOne makes one of unlistedCalls with harmless arguments and
// prints the result.
func unlistedOne(name string) {
	pid := uintptr(os.Getpid())
	var e syscall.Errno
	switch name {
	case "kcmp":
		// Compare this process's fd 0 with itself.
		_, _, e = unix.Syscall6(unix.SYS_KCMP, pid, pid, 0 /* KCMP_FILE */, 0, 0, 0)
	case "pidfd_getfd":
		// Take a copy of this process's own stdin.
		pidfd, err := unix.PidfdOpen(int(pid), 0)
		if err != nil {
			fmt.Print("PIDFD_OPEN ")
			result(err)
			return
		}
		_, _, e = unix.Syscall(unix.SYS_PIDFD_GETFD, uintptr(pidfd), 0, 0)
	case "modify_ldt":
		// Read the (empty) LDT.
		var buf [16]byte
		_, _, e = unix.Syscall(unix.SYS_MODIFY_LDT, 0, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	case "memfd_secret":
		_, _, e = unix.Syscall(447 /* SYS_MEMFD_SECRET */, 0, 0, 0)
	case "vmsplice":
		// One byte into a fresh pipe.
		var p [2]int
		if err := unix.Pipe2(p[:], 0); err != nil {
			fmt.Print("PIPE ")
			result(err)
			return
		}
		b := []byte("x")
		iov := unix.Iovec{Base: &b[0], Len: 1}
		_, _, e = unix.Syscall6(unix.SYS_VMSPLICE, uintptr(p[1]), uintptr(unsafe.Pointer(&iov)), 1, 0, 0, 0)
	case "execveat":
		// A descriptor that is not open: the kernel says EBADF.
		path, _ := unix.BytePtrFromString("x")
		argv := []*byte{nil}
		_, _, e = unix.Syscall6(unix.SYS_EXECVEAT, 9999, uintptr(unsafe.Pointer(path)),
			uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&argv[0])), 0, 0)
	case "setxattr":
		os.WriteFile("/tmp/f", []byte("x"), 0o644)
		p, _ := unix.BytePtrFromString("/tmp/f")
		n, _ := unix.BytePtrFromString("user.x")
		v := []byte("1")
		_, _, e = unix.Syscall6(unix.SYS_SETXATTR, uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(n)),
			uintptr(unsafe.Pointer(&v[0])), 1, 0, 0)
	case "sysfs":
		// The number of file system types the kernel knows.
		_, _, e = unix.Syscall(unix.SYS_SYSFS, 3, 0, 0)
	case "shmget":
		id, _, err := unix.Syscall(unix.SYS_SHMGET, 0 /* IPC_PRIVATE */, 4096, unix.IPC_CREAT|0o600)
		if e = err; e == 0 {
			unix.Syscall(unix.SYS_SHMCTL, id, unix.IPC_RMID, 0)
		}
	case "fanotify_init":
		// What an unprivileged caller may ask for (Linux 5.13).
		fd, _, err := unix.Syscall(unix.SYS_FANOTIFY_INIT, unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_FID, unix.O_RDONLY, 0)
		if e = err; e == 0 {
			unix.Close(int(fd))
		}
	case "ioprio_set":
		// Best-effort class, priority 4, for this process.
		_, _, e = unix.Syscall(unix.SYS_IOPRIO_SET, 1 /* IOPRIO_WHO_PROCESS */, 0, 2<<13|4)
	default:
		fmt.Fprintln(os.Stderr, "unknown call", name)
		os.Exit(2)
	}
	result(rawErr(0, 0, e))
}

// modeCall makes one of the syscalls that set a file mode on path with
// mode and prints the result. fchmod opens path first; tmpfile opens an
// unnamed file in the directory path (O_TMPFILE) and links it in as
// path/tmpfile, as a workload would to make it visible; openat2 passes
// O_CREAT and the mode in its struct open_how.
func modeCall(call, path string, mode uintptr, rest []string) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		result(err)
		return
	}
	ptr := uintptr(unsafe.Pointer(p))
	flags := uintptr(unix.O_CREAT | unix.O_WRONLY)
	if len(rest) > 0 {
		flags = num(rest[0])
	}
	cwd := unix.AT_FDCWD
	atFdcwd := uintptr(cwd)
	var r1 uintptr
	var e syscall.Errno
	fd := -1
	switch call {
	case "chmod":
		_, _, e = unix.Syscall(unix.SYS_CHMOD, ptr, mode, 0)
	case "fchmod":
		if fd, err = unix.Open(path, unix.O_RDONLY, 0); err != nil {
			fmt.Println("OPEN FAILED", err)
			return
		}
		_, _, e = unix.Syscall(unix.SYS_FCHMOD, uintptr(fd), mode, 0)
	case "fchmodat":
		_, _, e = unix.Syscall6(unix.SYS_FCHMODAT, atFdcwd, ptr, mode, 0, 0, 0)
	case "open":
		r1, _, e = unix.Syscall(unix.SYS_OPEN, ptr, flags, mode)
		fd = int(r1)
	case "creat":
		r1, _, e = unix.Syscall(unix.SYS_CREAT, ptr, mode, 0)
		fd = int(r1)
	case "openat":
		r1, _, e = unix.Syscall6(unix.SYS_OPENAT, atFdcwd, ptr, flags, mode, 0, 0)
		fd = int(r1)
	case "tmpfile":
		r1, _, e = unix.Syscall6(unix.SYS_OPENAT, atFdcwd, ptr, unix.O_TMPFILE|unix.O_WRONLY, mode, 0, 0)
		if e == 0 {
			fd = int(r1)
			err = unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, path+"/tmpfile", unix.AT_SYMLINK_FOLLOW)
			unix.Close(fd)
			result(err)
			return
		}
	case "mkdir":
		_, _, e = unix.Syscall(unix.SYS_MKDIR, ptr, mode, 0)
	case "mkdirat":
		_, _, e = unix.Syscall(unix.SYS_MKDIRAT, atFdcwd, ptr, mode)
	case "openat2":
		how := unix.OpenHow{Flags: uint64(flags), Mode: uint64(mode)}
		r1, _, e = unix.Syscall6(unix.SYS_OPENAT2, atFdcwd, ptr, uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how), 0, 0)
		fd = int(r1)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode call", call)
		os.Exit(2)
	}
	if e == 0 && fd >= 0 {
		unix.Close(fd)
	}
	result(rawErr(0, 0, e))
}

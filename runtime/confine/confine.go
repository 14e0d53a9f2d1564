// Package confine is the step that confines a process exec'd into a gVisor
// container started in an isolation mode. runsc exec takes no seccomp
// filter and no no_new_privs for the process it starts (its exec arguments
// have no such fields), so the gVisor engine bind-mounts this binary and
// the container's compiled filter read-only into the sandbox and runs
// `nucleus gvisor-confine --seccomp FILTER -- CMD ARGS...` there: it sets
// no_new_privs, loads the filter (gVisor's kernel enforces seccomp for its
// applications) and execs CMD, which inherits both. It only ever takes
// rights away, so running it is harmless to anyone in the sandbox.
package confine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Command is the hidden argv[1] that selects this step.
const Command = "gvisor-confine"

// Dir is where the gVisor engine mounts the helper and the filter in the
// container: a read-only directory mount under /dev, a tmpfs of gVisor's
// own, so that no mount point has to be made in a read-only rootfs, and
// one the sandbox can neither write nor rename away.
const Dir = "/dev/.nucleus"

// Helper and Filter are the paths of the helper binary and the compiled
// filter in the container.
const (
	Helper = Dir + "/nucleus"
	Filter = Dir + "/seccomp.bpf"
)

// Args is the argv runsc exec gets to run cmd confined; filter is "" when
// the container runs without a filter (no_new_privs only), else sum is its
// SHA-256 (hex), checked before the filter is loaded.
func Args(filter, sum string, cmd []string) []string {
	args := []string{Helper, Command}
	if filter != "" {
		args = append(args, "--seccomp", filter, "--seccomp-sha256", sum)
	}
	return append(append(args, "--"), cmd...)
}

// Main runs the step with the arguments after Command and never returns:
// it execs the command or exits 126 (127: command not found) with one line
// on stderr, never running the command unconfined.
func Main(args []string) {
	if err := run(args); err != nil {
		fmt.Fprintf(os.Stderr, "nucleus: %s: %v\n", Command, err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			os.Exit(127)
		}
		os.Exit(126)
	}
}

func run(args []string) error {
	filter, sum := "", ""
	for len(args) > 0 && args[0] != "--" {
		switch {
		case args[0] == "--seccomp" && len(args) > 1:
			filter, args = args[1], args[2:]
		case args[0] == "--seccomp-sha256" && len(args) > 1:
			sum, args = args[1], args[2:]
		default:
			return fmt.Errorf("unknown argument %q (want [--seccomp FILE --seccomp-sha256 HEX] -- CMD [ARGS...])", args[0])
		}
	}
	if filter != "" && sum == "" {
		return errors.New("--seccomp needs --seccomp-sha256")
	}
	if len(args) < 2 {
		return errors.New("no command after --")
	}
	cmd := args[1:]
	path, err := exec.LookPath(cmd[0])
	if err != nil {
		return fmt.Errorf("%s: %w", cmd[0], err)
	}
	var prog []byte
	if filter != "" {
		if prog, err = os.ReadFile(filter); err != nil {
			return fmt.Errorf("--seccomp: %w", err)
		}
		if len(prog) == 0 || len(prog)%8 != 0 || len(prog)/8 > 4096 {
			return fmt.Errorf("--seccomp %s: %d bytes is not a BPF program", filter, len(prog))
		}
		// The filter the container was created with, or none at all.
		if got := sha256.Sum256(prog); hex.EncodeToString(got[:]) != sum {
			return fmt.Errorf("--seccomp %s: SHA-256 %x is not the container's filter %s; refusing to run unconfined", filter, got, sum)
		}
	}
	// The filter goes on every thread (TSYNC), and the exec happens on
	// the thread that loaded it.
	goruntime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if prog != nil {
		fprog := unix.SockFprog{Len: uint16(len(prog) / 8), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
		_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
		goruntime.KeepAlive(prog)
		if errno != 0 {
			return fmt.Errorf("load seccomp filter %s: %w", filter, errno)
		}
	}
	if err := syscall.Exec(path, cmd, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

// Package userns creates a container's user namespace with an
// unprivileged creator and pins it to a file, for libcontainer to join by
// path.
//
// The kernel charges per-user counts (inotify instances and watches,
// queued signals, ...) up the user-namespace chain, at each level to the
// uid that created the namespace below (kernel/ucount.c). libcontainer
// creates a container's user namespace as its caller, host root, so a
// sandboxed workload could use up host root's quotas: fill
// fs.inotify.max_user_instances or RLIMIT_SIGPENDING and host root's own
// inotify_init1 or sigqueue fail. Created by the host uid the container's
// root maps to, the namespace charges that uid instead.
package userns

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// HoldCommand is the argv[1] that makes the binary the namespace's
// creator (hold.c) instead of nucleus.
const HoldCommand = "userns-hold"

// ErrCreate classes a failure to create or pin the namespace.
var ErrCreate = errors.New("cannot create the user namespace")

// Create makes a user namespace whose creator is host uid and gid owner,
// writes its uid and gid maps (as host root) and pins it at path, a new
// file that Remove takes away again. On error nothing is left at path.
func Create(path string, owner uint32, uidMap, gidMap []specs.LinuxIDMapping) (err error) {
	if owner == 0 {
		return fmt.Errorf("%w: its owner must be an unprivileged uid, not 0", ErrCreate)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY|unix.O_NOFOLLOW, 0o400)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCreate, err)
	}
	f.Close()
	defer func() {
		if err != nil {
			_ = Remove(path)
		}
	}()
	return create(owner, uidMap, gidMap, func(proc string) error {
		// A bind mount of the nsfs file keeps the namespace alive once its
		// creator is gone.
		if err := unix.Mount(proc+"/ns/user", path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("%w: pin at %s: %v", ErrCreate, path, err)
		}
		return nil
	})
}

// Open makes a user namespace as Create does and returns a descriptor of
// it instead of pinning it: the namespace lives while the descriptor is
// open (an idmapped mount made with it keeps it as long as it needs).
func Open(owner uint32, uidMap, gidMap []specs.LinuxIDMapping) (ns *os.File, err error) {
	if owner == 0 {
		return nil, fmt.Errorf("%w: its owner must be an unprivileged uid, not 0", ErrCreate)
	}
	err = create(owner, uidMap, gidMap, func(proc string) error {
		var oerr error
		if ns, oerr = os.Open(proc + "/ns/user"); oerr != nil {
			return fmt.Errorf("%w: %v", ErrCreate, oerr)
		}
		return nil
	})
	return ns, err
}

// create starts a creator owned by owner, writes its maps and calls got
// with its /proc directory while it still holds the namespace.
func create(owner uint32, uidMap, gidMap []specs.LinuxIDMapping, got func(proc string) error) (err error) {
	// The creator dies with the thread that started it (PR_SET_PDEATHSIG):
	// keep this goroutine on that thread until the creator is done.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command("/proc/self/exe", HoldCommand, strconv.FormatUint(uint64(owner), 10))
	cmd.Env = []string{}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCreate, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCreate, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: start %s: %v", ErrCreate, HoldCommand, err)
	}
	defer func() {
		stdin.Close()
		if err != nil {
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
	}()
	ready := make([]byte, 1)
	if _, err := io.ReadFull(stdout, ready); err != nil || ready[0] != 'R' {
		stdin.Close()
		_ = cmd.Wait()
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = fmt.Sprintf("%s exited without a namespace", HoldCommand)
		}
		return fmt.Errorf("%w: %s", ErrCreate, strings.TrimPrefix(msg, "nucleus: "))
	}
	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	// gid_map before uid_map is what newuidmap does; either works for a
	// writer with CAP_SETUID and CAP_SETGID in the parent namespace.
	if err := writeMap(proc+"/gid_map", gidMap); err != nil {
		return err
	}
	if err := writeMap(proc+"/uid_map", uidMap); err != nil {
		return err
	}
	return got(proc)
}

func writeMap(file string, m []specs.LinuxIDMapping) error {
	if len(m) == 0 {
		return fmt.Errorf("%w: no mapping for %s", ErrCreate, file)
	}
	var b strings.Builder
	for _, e := range m {
		fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	// The kernel takes the whole map in one write, and only once.
	if err := os.WriteFile(file, []byte(b.String()), 0); err != nil {
		return fmt.Errorf("%w: write %s: %v", ErrCreate, file, err)
	}
	return nil
}

// Remove unpins and removes a namespace file made by Create. A missing
// file, or one no longer pinned, is not an error.
func Remove(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin user namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove user namespace %s: %w", path, err)
	}
	return nil
}

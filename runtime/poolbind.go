package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/userns"
)

// ErrPlaceholder: a pooled sandbox's /workspace is not the placeholder it
// was started with, so nothing is mounted there.
var ErrPlaceholder = errors.New("its /workspace is not the pool's placeholder")

// bindPooledWorkspace mounts the host directory ws (prepared, a bind
// kind) over the placeholder at PoolWorkspace of the pooled sandbox id, as
// a cold sandbox's bind is made: recursive, nosuid, nodev, noexec unless
// the member's workspace allows exec, read-only for bind-ro, idmapped
// with the same maps under the sandbox's user namespace. The mount exists
// only in the sandbox's mount namespace (never on the host), so it goes
// away with the sandbox however that ends, and nothing writes to or
// removes the host directory on the way.
//
// Landlock's rules on the placeholder cover the files below the new mount:
// a path walk for an access check climbs from a mount's root to the
// mountpoint it covers, which carries the workspace's rule.
func (r *Runtime) bindPooledWorkspace(id string, rec *sandboxRecord, ws *policy.Workspace) error {
	st, err := r.State(id)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w: %w", id, ErrNotPooled, err)
	}
	pid := st.InitProcessPid
	if pid <= 0 {
		return fmt.Errorf("sandbox %s: %w", id, ErrNotPooled)
	}
	// The placeholder's host side: the copy dir it was bound from.
	var want unix.Stat_t
	if err := unix.Stat(filepath.Join(r.Root, engine.WorkspaceCopyPrefix+id, "0"), &want); err != nil {
		return fmt.Errorf("sandbox %s: workspace: %w (%v)", id, ErrPlaceholder, err)
	}
	// A pidfd pins which process the /proc files below are of: checked
	// alive after they are open, the pid was not reused in between.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("sandbox %s: its init (pid %d): %w", id, pid, ErrNotPooled)
	}
	defer unix.Close(pidfd)
	proc := "/proc/" + strconv.Itoa(pid)
	mntns, err := os.Open(proc + "/ns/mnt")
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", id, err)
	}
	defer mntns.Close()
	root, err := os.OpenFile(proc+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", id, err)
	}
	defer root.Close()
	hasUserNS, err := ownUserNS(proc)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", id, err)
	}
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		return fmt.Errorf("sandbox %s: its init ended: %w", id, ErrNotPooled)
	}
	if err := policy.CheckWorkspaceBind(ws, hasUserNS); err != nil {
		return err
	}

	tree, err := unix.OpenTree(unix.AT_FDCWD, ws.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("workspace %s: %w", ws.Source, err)
	}
	defer unix.Close(tree)
	// The directory the caller checked (owner, not root's for bind-rw),
	// not one swapped in since (a symlink the user named is followed, as
	// a cold sandbox's bind follows it).
	var got unix.Stat_t
	if err := unix.Fstat(tree, &got); err != nil {
		return fmt.Errorf("workspace %s: %w", ws.Source, err)
	}
	if got.Dev != ws.Dev || got.Ino != ws.Ino {
		return fmt.Errorf("workspace %s: replaced while the sandbox was prepared", ws.Source)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV, Propagation: unix.MS_PRIVATE}
	if !ws.Exec {
		attr.Attr_set |= unix.MOUNT_ATTR_NOEXEC
	}
	if ws.Kind == policy.WorkspaceBindRO {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if hasUserNS && policy.WorkspaceIdmapped(ws) {
		uids, gids := policy.WorkspaceIDMaps(ws, rec.UID, rec.GID)
		ns, err := userns.Open(max(rec.HostUID, 1), uids, gids)
		if err != nil {
			return fmt.Errorf("workspace %s: idmap: %w", ws.Source, err)
		}
		defer ns.Close()
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(ns.Fd())
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("workspace %s: set its mount's attributes (idmapped: %v): %w", ws.Source, hasUserNS, err)
	}

	// setns into the sandbox's mount namespace changes the thread for
	// good: it runs on a thread of its own, unshared from the process's
	// root and cwd, which exits with the goroutine (still locked).
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		done <- moveInto(int(mntns.Fd()), int(root.Fd()), tree, &want)
	}()
	if err := <-done; err != nil {
		return fmt.Errorf("sandbox %s: workspace %s: %w", id, ws.Source, err)
	}
	return nil
}

// moveInto attaches tree at PoolWorkspace in the mount namespace mntns,
// resolved from the sandbox's root without leaving it or following a
// symlink, once it has checked that what is there is the placeholder
// (want). No workload has run in a member not yet handed out, so nothing
// should have moved it; the check is what makes a mistake harmless (a
// stale state naming another process, a member taken twice): only the
// member's own mount namespace has its placeholder there.
func moveInto(mntns, root, tree int, want *unix.Stat_t) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	if err := unix.Setns(mntns, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join its mount namespace: %w", err)
	}
	target, err := unix.Openat2(root, strings.TrimPrefix(PoolWorkspace, "/"), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrPlaceholder, PoolWorkspace, err)
	}
	defer unix.Close(target)
	var got unix.Stat_t
	if err := unix.Fstat(target, &got); err != nil {
		return err
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		return ErrPlaceholder
	}
	// Were the placeholder's mount shared with the host's copy dir, the
	// new mount would appear there too, on the host.
	if err := unix.MountSetattr(target, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Propagation: unix.MS_PRIVATE}); err != nil {
		return fmt.Errorf("make %s private: %w", PoolWorkspace, err)
	}
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount at %s: %w", PoolWorkspace, err)
	}
	return nil
}

// ownUserNS reports whether the process at proc has a user namespace of
// its own (not the host's).
func ownUserNS(proc string) (bool, error) {
	var theirs, ours unix.Stat_t
	if err := unix.Stat(proc+"/ns/user", &theirs); err != nil {
		return false, err
	}
	if err := unix.Stat("/proc/self/ns/user", &ours); err != nil {
		return false, err
	}
	return theirs.Ino != ours.Ino || theirs.Dev != ours.Dev, nil
}

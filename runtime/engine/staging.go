package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/spec"
)

// StageRootfs gives a container (of either engine) in an isolation mode its
// own view of the
// bundle's rootfs under the state dir: a read-only-lower overlay at
// <root>/@rootfs-<id>/merged whose lower layer is named by a file
// descriptor. So
//   - the container's mountinfo shows /proc/self/fd/N for every layer,
//     never where the user keeps the bundle or the state root;
//   - the overlay reads the bundle with the credentials of whoever mounted
//     it (root), so a bundle under a 0700 directory (what mktemp -d makes)
//     still runs with a user namespace;
//   - mount points the runtime has to create land in the upper layer on
//     the state dir, never in the user's bundle.
//
// It returns the path to use as the rootfs, a release function for the
// caller's error paths (deleting the container releases it too) and an
// unlock function to call once the container's state exists: until then
// the staging directory is locked, so a concurrent create of the same id
// is refused instead of taking it for a crashed create's leftover.
func StageRootfs(root, id, rootfs string) (path string, release, unlock func(), err error) {
	path, release, lock, err := stageRootfs(root, id, rootfs)
	if err != nil {
		return "", nil, nil, err
	}
	return path, release, func() { unix.Close(lock) }, nil
}

func stageRootfs(root, id, rootfs string) (string, func(), int, error) {
	if err := spec.ValidateID(id); err != nil {
		return "", nil, -1, err
	}
	if _, err := os.Lstat(StateDir(root, id)); err == nil {
		return "", nil, -1, fmt.Errorf("container %s %w under %s", id, ErrExist, root)
	}
	st, err := os.Stat(rootfs)
	if err != nil {
		return "", nil, -1, fmt.Errorf("rootfs %s: %w", rootfs, err)
	}
	if !st.IsDir() {
		return "", nil, -1, fmt.Errorf("rootfs %s: not a directory", rootfs)
	}
	if err := SearchableRoot(root); err != nil {
		return "", nil, -1, err
	}
	parent := stagingParent(root)
	dir := stagingDir(root, id)
	lockIn := func() (lock int, err error) {
		// A root staging under StagingBase: the last unstage of
		// another of its containers may remove the parent between
		// its creation and our mkdir.
		for try := 0; ; try++ {
			if parent != root {
				if err := SearchableRoot(parent); err != nil {
					return -1, err
				}
			}
			lock, err = lockStaging(dir)
			if !errors.Is(err, fs.ErrNotExist) || parent == root || try == 3 {
				return lock, err
			}
		}
	}
	lock, err := lockIn()
	if errors.Is(err, fs.ErrExist) {
		// Left by a create that crashed before its state existed (a
		// live one holds the lock).
		if err := UnstageRootfs(root, id); err != nil {
			return "", nil, -1, err
		}
		lock, err = lockIn()
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		return "", nil, -1, fmt.Errorf("container %s %w under %s (being created)", id, ErrExist, root)
	}
	if err != nil {
		return "", nil, -1, fmt.Errorf("stage rootfs: %w", err)
	}
	release := func() { _ = unstage(dir) }
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			release()
			unix.Close(lock)
			return "", nil, -1, fmt.Errorf("stage rootfs: %w", err)
		}
	}
	// The overlay's root directory takes the upper layer's owner and mode:
	// make them the bundle rootfs's own.
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if err := os.Chown(upper, int(sys.Uid), int(sys.Gid)); err != nil {
			release()
			unix.Close(lock)
			return "", nil, -1, fmt.Errorf("stage rootfs: %w", err)
		}
	}
	if err := os.Chmod(upper, st.Mode().Perm()); err != nil {
		release()
		unix.Close(lock)
		return "", nil, -1, fmt.Errorf("stage rootfs: %w", err)
	}
	// Every layer is named by a descriptor, so the mount's options show
	// /proc/self/fd/N, never a host path (the bundle's, or the state
	// root's).
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, d := range []string{rootfs, upper, work} {
		fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			release()
			unix.Close(lock)
			return "", nil, -1, fmt.Errorf("stage rootfs: %s: %w", d, err)
		}
		fds = append(fds, fd)
	}
	// volatile: the upper layer is thrown away with the container, so
	// nothing in it needs to reach the disk. Without it, the unmount at
	// delete syncs the whole filesystem under the state root (a syncfs
	// that took 20-130 ms per container on ext4 here).
	data := fmt.Sprintf("lowerdir=/proc/self/fd/%d,upperdir=/proc/self/fd/%d,workdir=/proc/self/fd/%d,volatile", fds[0], fds[1], fds[2])
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		release()
		unix.Close(lock)
		return "", nil, -1, fmt.Errorf("stage rootfs %s at %s: overlay: %w", rootfs, merged, err)
	}
	return merged, release, lock, nil
}

// lockStaging makes dir and locks it for this create: fs.ErrExist when it
// is already there (locked or not: lockStaging tells by trying again after
// the caller cleaned a leftover), unix.EWOULDBLOCK when another create of
// the same id holds it.
func lockStaging(dir string) (int, error) {
	err := os.Mkdir(dir, 0o711)
	if errors.Is(err, fs.ErrExist) {
		fd, oerr := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if oerr != nil {
			return -1, err
		}
		defer unix.Close(fd)
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
			return -1, unix.EWOULDBLOCK
		}
		return -1, err
	}
	if err != nil {
		return -1, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// GuardStaging closes the staging dir of a container whose root other uids
// cannot reach (it stages under StagingBase) to everyone but host root
// and uid:gid, the host ids the container's root maps to (0:0 without a
// user namespace), who must pass it to reach the rootfs. Other host users
// can then neither read the container's files nor plant their own in its
// writable directories: the client's private root (Docker's 0700 exec
// root, as its 0710 data root for runc's containers) keeps them out, and
// staging elsewhere must not let them in. (Roots others can reach keep
// their 0711 staging dirs: `policy trace`, whose seccomp listener makes
// the container's setup pass the dir as another uid, needs that.)
func GuardStaging(root, id string, uid, gid int) error {
	if os.Geteuid() != 0 || stagingParent(root) == root {
		// Rootless, the dir is the caller's own already.
		return nil
	}
	dir := stagingDir(root, id)
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("stage rootfs: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("stage rootfs: %w", err)
	}
	return nil
}

// StagedRootfs is where the rootfs of a container in an isolation mode will
// be once started (policy.Apply's host facts are about that path). It makes
// the state root searchable, as staging needs.
func StagedRootfs(root, id string) (string, error) {
	if err := SearchableRoot(root); err != nil {
		return "", err
	}
	return filepath.Join(stagingDir(root, id), "merged"), nil
}

// stagedUserNSName is the file in a container's staging dir where its
// user namespace is pinned.
const stagedUserNSName = "userns"

// StagedUserNS is where a staged container's user namespace is pinned
// when nucleus creates it (package userns) rather than libcontainer: in
// the staging dir, so that every path that removes the staging (delete,
// a failed create, the end of a run) unpins it too.
func StagedUserNS(root, id string) string {
	return filepath.Join(stagingDir(root, id), stagedUserNSName)
}

func stagingDir(root, id string) string {
	return filepath.Join(stagingParent(root), StagingPrefix+id)
}

// StagingBase is where the staged rootfs dirs of a state root that an
// unprivileged uid cannot reach are kept, one directory per root (named
// by the hash of its path).
var StagingBase = "/run/nucleus-rootfs"

// stagingParent is the directory a state root's staged rootfs dirs live
// in: the root itself, unless a directory above it keeps other uids out.
// A user namespace's root must reach the staged rootfs, and the clients
// put the runtime's root in private places: Docker's is
// /run/docker/runtime-runc/moby, below two 0700 directories, where the
// mode's user namespace would be dropped. Those roots stage under
// StagingBase; the same root always maps to the same place, so delete
// finds what create staged.
func stagingParent(root string) string {
	abs, err := filepath.Abs(root)
	if err != nil || reachableAbove(abs) {
		return root
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(StagingBase, hex.EncodeToString(sum[:12]))
}

// reachableAbove reports whether every existing directory above path lets
// others search it (path itself is made so by SearchableRoot).
func reachableAbove(path string) bool {
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err == nil && st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false
		}
		if dir == "/" || dir == "." {
			return true
		}
	}
}

// dropStagingParent removes a root's directory under StagingBase (and the
// base) once its last staged rootfs is gone, so no trace of the root
// stays on the host; a directory still in use is not empty and stays.
func dropStagingParent(parent string) {
	if filepath.Dir(parent) != StagingBase {
		return
	}
	if unix.Rmdir(parent) == nil {
		_ = unix.Rmdir(StagingBase)
	}
}

// UnstageRootfs unmounts and removes a container's staged rootfs, if any,
// unless a create of that id is still making it (it holds the lock).
func UnstageRootfs(root, id string) error {
	dir := stagingDir(root, id)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err == nil {
		defer unix.Close(fd)
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
			return nil // a create in progress owns it
		}
	}
	return unstage(dir)
}

// unstage unmounts and removes the staging dir, for its own creator too.
func unstage(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// The container's pinned user namespace (see StagedUserNS), if any.
	ns := filepath.Join(dir, stagedUserNSName)
	if err := unix.Unmount(ns, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin user namespace %s: %w", ns, err)
	}
	merged := filepath.Join(dir, "merged")
	if err := unix.Unmount(merged, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount staged rootfs %s: %w", merged, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove staged rootfs %s: %w", dir, err)
	}
	dropStagingParent(filepath.Dir(dir))
	return nil
}

// ReleaseStaged removes the staged rootfs of a container being destroyed,
// recognised by its path (<parent>/@rootfs-<id>/merged, the parent being
// the root or its directory under StagingBase).
func ReleaseStaged(id, rootfs string) {
	dir := filepath.Dir(rootfs)
	if filepath.Base(rootfs) != "merged" || filepath.Base(dir) != StagingPrefix+id {
		return
	}
	_ = UnstageRootfs(filepath.Dir(dir), id)
}

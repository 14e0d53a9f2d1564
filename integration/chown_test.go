package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// chownTree gives every directory, regular file and symlink under dir to
// uid:gid, as a user's own workspace or bundle would be. It never leaves
// dir's mount: a mount point under it (a bind of the host's /dev/null
// into a rootfs/dev, say, by a container set up meanwhile) is skipped, as
// is any device node, fifo or socket. Twice a chown walk of a bundle here
// gave the host's /dev/null to nobody: Lchown of a path follows a mount
// on it, so each entry is opened beneath dir with RESOLVE_NO_XDEV and the
// chown goes through that descriptor.
func chownTree(t testing.TB, dir string, uid, gid int) {
	t.Helper()
	if err := lchownBeneath(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
}

const resolveHere = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// lchownBeneath is chownTree's walk; the error names the entry.
func lchownBeneath(dir string, uid, gid int) error {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("chown walk %s: %w", dir, err)
	}
	defer unix.Close(root)
	var st unix.Stat_t
	if err := unix.Fstat(root, &st); err != nil {
		return fmt.Errorf("chown walk %s: %w", dir, err)
	}
	if err := unix.Fchownat(root, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown walk %s: %w", dir, err)
	}
	return lchownEntries(root, dir, st.Dev, uid, gid)
}

// lchownEntries chowns what directory fd (named name, on device dev) holds.
func lchownEntries(fd int, name string, dev uint64, uid, gid int) error {
	// A duplicate for reading: os.File closes its descriptor.
	dup, err := unix.Dup(fd)
	if err != nil {
		return fmt.Errorf("chown walk %s: %w", name, err)
	}
	f := os.NewFile(uintptr(dup), name)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("chown walk %s: %w", name, err)
	}
	for _, n := range names {
		p := filepath.Join(name, n)
		// O_PATH|O_NOFOLLOW opens a symlink itself; RESOLVE_NO_XDEV
		// refuses a mount point (EXDEV) before anything is opened on it.
		e, err := unix.Openat2(fd, n, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: resolveHere})
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOENT) {
			continue // a mount point, or gone meanwhile
		}
		if err != nil {
			return fmt.Errorf("chown walk %s: %w", p, err)
		}
		var st unix.Stat_t
		err = unix.Fstat(e, &st)
		kind := st.Mode & unix.S_IFMT
		if err != nil || st.Dev != dev || (kind != unix.S_IFDIR && kind != unix.S_IFREG && kind != unix.S_IFLNK) {
			unix.Close(e)
			if err != nil {
				return fmt.Errorf("chown walk %s: %w", p, err)
			}
			continue // another filesystem, a device node, a fifo, a socket
		}
		err = unix.Fchownat(e, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(e)
		if err != nil {
			return fmt.Errorf("chown walk %s: %w", p, err)
		}
		if kind != unix.S_IFDIR {
			continue
		}
		d, err := unix.Openat2(fd, n, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: resolveHere})
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("chown walk %s: %w", p, err)
		}
		var again unix.Stat_t
		if err := unix.Fstat(d, &again); err != nil || again.Dev != st.Dev || again.Ino != st.Ino {
			unix.Close(d)
			continue // swapped since: not the directory chowned
		}
		err = lchownEntries(d, p, dev, uid, gid)
		unix.Close(d)
		if err != nil {
			return err
		}
	}
	return nil
}

// TestChownWalkStaysOnItsTree: the tests' chown walk gives a tree to a
// user but never what a mount point in it shows (a bind of a root-owned
// file, standing in for the host's /dev/null), a device node, or what a
// symlink points at.
func TestChownWalkStaysOnItsTree(t *testing.T) {
	const nobody = 65534
	tree, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "null")
	pointed := filepath.Join(outside, "pointed")
	for _, f := range []string{target, pointed} {
		if err := os.WriteFile(f, nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"rootfs/dev", "rootfs/bin", "mnt"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(tree, "config.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(tree, "rootfs/dev/null"), nil, 0o666)
	os.Symlink(pointed, filepath.Join(tree, "rootfs/bin/link"))
	if err := unix.Mknod(filepath.Join(tree, "rootfs/dev/zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
		t.Fatal(err)
	}
	// The bind, as a container's setup would make it, and a whole
	// directory mounted over one in the tree.
	if err := unix.Mount(target, filepath.Join(tree, "rootfs/dev/null"), "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(tree, "rootfs/dev/null"), unix.MNT_DETACH) })
	if err := unix.Mount("tmpfs", filepath.Join(tree, "mnt"), "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(tree, "mnt"), unix.MNT_DETACH) })

	chownTree(t, tree, nobody, nobody)

	owner := func(p string) int {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return int(st.Uid)
	}
	for _, p := range []string{"", "config.json", "rootfs", "rootfs/dev", "rootfs/bin", "rootfs/bin/link"} {
		if got := owner(filepath.Join(tree, p)); got != nobody {
			t.Errorf("%s: owner %d, want %d", p, got, nobody)
		}
	}
	for _, p := range []string{target, pointed, filepath.Join(tree, "rootfs/dev/zero"), filepath.Join(tree, "mnt"),
		filepath.Join(tree, "rootfs/dev/null")} {
		if got := owner(p); got != 0 {
			t.Errorf("%s: owner %d: the walk went through a mount, a device node or a symlink", p, got)
		}
	}
}

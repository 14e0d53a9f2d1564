// Package workspace makes the private copy a copy-in-out sandbox works on
// and writes it back, as root, without trusting either tree.
//
// The copy was written by the sandbox and the workspace by a host user, so
// both may hold symlinks, hard links, special files and set-id bits placed
// to trick a privileged copier. Every step therefore works on directory
// descriptors opened with O_NOFOLLOW and *at syscalls: nothing is ever
// resolved through a symlink, and nothing is created, written or chmodded
// outside the destination tree.
//
//   - Symlinks are copied as links, never followed. Going back, absolute
//     links and relative ones that leave the workspace are dropped.
//   - Regular files are written to a temporary name in the same directory
//     and renamed over the old entry, so a run killed half-way leaves no
//     half-written file and a hard or symbolic link at the old name is
//     replaced, not written through.
//   - Everything written is owned by one uid:gid (the sandbox's ids going
//     in, the workspace owner's going back) with permission bits only: no
//     set-id or sticky bits, no xattrs (file capabilities, ACLs).
//   - Devices, fifos and sockets are not copied.
//   - Going back, entries deleted in the copy are deleted in the
//     workspace, beneath it and without following links.
package workspace

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Dropped is told about each entry left out of a copy and why.
type Dropped func(path, reason string)

// Copy is a sandbox's private copy of a host workspace.
type Copy struct {
	// Orig is the host workspace, Dir the copy.
	Orig, Dir string
	dropped   Dropped
	// kept are workspace paths In left out: Back must not take their
	// absence from the copy for a deletion.
	kept map[string]bool
}

// In fills dir, an existing empty directory, with a copy of orig owned by
// uid:gid. Files the workspace's owner could not read themselves are left
// out (a root-only file hard-linked into the workspace stays private).
func In(orig, dir string, uid, gid int, dropped Dropped) (*Copy, error) {
	c := &Copy{Orig: orig, Dir: dir, dropped: dropped, kept: map[string]bool{}}
	sfd, err := openDir(unix.AT_FDCWD, orig, false)
	if err != nil {
		return nil, fmt.Errorf("workspace %s: %w", orig, err)
	}
	defer unix.Close(sfd)
	dfd, err := openDir(unix.AT_FDCWD, dir, true)
	if err != nil {
		return nil, fmt.Errorf("workspace copy %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		return nil, fmt.Errorf("workspace %s: %w", orig, err)
	}
	m := &mirror{c: c, uid: uid, gid: gid, ownerUID: st.Uid, ownerGID: st.Gid}
	if err := m.dir(sfd, dfd, ""); err != nil {
		return nil, fmt.Errorf("workspace copy of %s: %w", orig, err)
	}
	return c, nil
}

// Back makes the workspace match the copy, everything it writes owned by
// the workspace directory's owner.
func (c *Copy) Back() error {
	sfd, err := openDir(unix.AT_FDCWD, c.Dir, true)
	if err != nil {
		return fmt.Errorf("workspace copy %s: %w", c.Dir, err)
	}
	defer unix.Close(sfd)
	dfd, err := openDir(unix.AT_FDCWD, c.Orig, false)
	if err != nil {
		return fmt.Errorf("workspace copy-back to %s: %w", c.Orig, err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		return fmt.Errorf("workspace copy-back to %s: %w", c.Orig, err)
	}
	m := &mirror{c: c, back: true, root: sfd, uid: int(st.Uid), gid: int(st.Gid)}
	if err := m.dir(sfd, dfd, ""); err != nil {
		return fmt.Errorf("workspace copy-back to %s: %w", c.Orig, err)
	}
	return nil
}

// mirror copies one tree onto another in one direction.
type mirror struct {
	c    *Copy
	back bool
	// root is the source tree's root (going back: links are checked
	// against it).
	root     int
	uid, gid int
	// ownerUID and ownerGID own the workspace (going in: what they can't
	// read is left out).
	ownerUID, ownerGID uint32
}

func (m *mirror) drop(p, why string) {
	if m.c.dropped != nil {
		m.c.dropped(p, why)
	}
}

// dir mirrors the directory sfd onto dfd; rel is its path in the tree.
func (m *mirror) dir(sfd, dfd int, rel string) error {
	names, err := readNames(sfd)
	if err != nil {
		return fmt.Errorf("%s: %w", show(rel), err)
	}
	present := make(map[string]bool, len(names))
	for _, name := range names {
		p := path.Join(rel, name)
		present[name] = true
		var st unix.Stat_t
		if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				delete(present, name)
				continue
			}
			return fmt.Errorf("%s: %w", p, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			err = m.subdir(sfd, dfd, name, p, &st)
		case unix.S_IFREG:
			err = m.file(sfd, dfd, name, p, &st)
		case unix.S_IFLNK:
			err = m.link(sfd, dfd, name, p)
		default:
			m.skip(p, "special file (device, fifo or socket) not copied")
		}
		if err != nil {
			return err
		}
	}
	dnames, err := readNames(dfd)
	if err != nil {
		return fmt.Errorf("%s: %w", show(rel), err)
	}
	for _, name := range dnames {
		if present[name] || m.c.kept[path.Join(rel, name)] {
			continue
		}
		if err := removeAt(dfd, name); err != nil {
			return fmt.Errorf("%s: %w", path.Join(rel, name), err)
		}
	}
	return nil
}

// skip leaves p out; going in, Back will leave the workspace's p alone.
func (m *mirror) skip(p, why string) {
	m.drop(p, why)
	if !m.back {
		m.c.kept[p] = true
	}
}

// readable reports whether the workspace owner could read st themselves.
func (m *mirror) readable(st *unix.Stat_t, need uint32) bool {
	switch {
	case m.back || m.ownerUID == 0:
		return true
	case st.Uid == m.ownerUID:
		return st.Mode&(need<<6) == need<<6
	case st.Gid == m.ownerGID:
		return st.Mode&(need<<3) == need<<3
	}
	return st.Mode&need == need
}

func (m *mirror) subdir(sfd, dfd int, name, p string, st *unix.Stat_t) error {
	if !m.readable(st, 5) {
		m.skip(p, "not readable by the workspace owner")
		return nil
	}
	var dst unix.Stat_t
	err := unix.Fstatat(dfd, name, &dst, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && dst.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := removeAt(dfd, name); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		err = unix.ENOENT
	}
	if errors.Is(err, unix.ENOENT) {
		err = unix.Mkdirat(dfd, name, 0o700)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	cs, err := openDir(sfd, name, true)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer unix.Close(cs)
	// O_NOFOLLOW: had the directory just made been swapped for a link,
	// this fails rather than descend wherever it points.
	cd, err := openDir(dfd, name, true)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer unix.Close(cd)
	if err := m.dir(cs, cd, p); err != nil {
		return err
	}
	if err := unix.Fchown(cd, m.uid, m.gid); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := unix.Fchmod(cd, st.Mode&0o777|st.Mode&unix.S_ISVTX); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

func (m *mirror) file(sfd, dfd int, name, p string, st *unix.Stat_t) error {
	if !m.readable(st, 4) {
		m.skip(p, "not readable by the workspace owner")
		return nil
	}
	perm := st.Mode & 0o777
	var dst unix.Stat_t
	err := unix.Fstatat(dfd, name, &dst, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && dst.Mode&unix.S_IFMT == unix.S_IFREG && dst.Mode&0o7777 == perm &&
		dst.Size == st.Size && dst.Mtim == st.Mtim {
		return nil // unchanged
	}
	if err == nil && dst.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := removeAt(dfd, name); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	// O_NONBLOCK: a fifo swapped in since the stat must not hang us.
	in, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	src := os.NewFile(uintptr(in), p)
	defer src.Close()
	var now unix.Stat_t
	if err := unix.Fstat(in, &now); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if now.Mode&unix.S_IFMT != unix.S_IFREG {
		m.skip(p, "changed while being copied")
		return nil
	}
	return m.replace(dfd, name, p, func(fd int, tmp string) error {
		out := os.NewFile(uintptr(fd), tmp)
		_, err := io.Copy(out, src)
		if err == nil {
			err = unix.Fchown(fd, m.uid, m.gid)
		}
		if err == nil {
			// After the chown, which would clear set-id bits anyway.
			err = unix.Fchmod(fd, perm)
		}
		if err == nil {
			err = unix.UtimesNanoAt(dfd, tmp, []unix.Timespec{now.Atim, now.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

func (m *mirror) link(sfd, dfd int, name, p string) error {
	target, err := readlinkAt(sfd, name)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if m.back {
		if why := m.escapes(p, target); why != "" {
			m.drop(p, why)
			return nil
		}
	}
	var dst unix.Stat_t
	err = unix.Fstatat(dfd, name, &dst, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && dst.Mode&unix.S_IFMT == unix.S_IFLNK {
		if old, err := readlinkAt(dfd, name); err == nil && old == target {
			return nil
		}
	}
	if err == nil && dst.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := removeAt(dfd, name); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	tmp := tempName()
	if err := unix.Symlinkat(target, dfd, tmp); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	err = unix.Fchownat(dfd, tmp, m.uid, m.gid, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// escapes says why a link at p (a path in the copy) to target must not
// reach the workspace, or "" if it stays inside.
func (m *mirror) escapes(p, target string) string {
	if strings.HasPrefix(target, "/") {
		return "absolute symlink"
	}
	// Lexically: .. may not climb above the tree's root.
	depth := strings.Count(p, "/")
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			depth--
		default:
			depth++
		}
		if depth < 0 {
			return "symlink leaves the workspace"
		}
	}
	// And as the kernel resolves it through the copy's other links: a
	// link to "." followed by .. also climbs out.
	fd, err := unix.Openat2(m.root, p, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err == nil {
		unix.Close(fd)
		return ""
	}
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
		return "symlink leaves the workspace"
	}
	return ""
}

// replace writes a new file at a temporary name beside name and renames
// it over name.
func (m *mirror) replace(dfd int, name, p string, write func(fd int, tmp string) error) error {
	tmp := tempName()
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	err = write(fd, tmp)
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// tempPrefix names files being written; one left by a killed run is an
// entry the next write-back removes like any other the copy lacks.
const tempPrefix = ".nucleus-tmp-"

func tempName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return tempPrefix + hex.EncodeToString(b[:])
}

// openDir opens name beneath dirfd as a directory; with noFollow a final
// symlink fails instead of being followed.
func openDir(dirfd int, name string, noFollow bool) (int, error) {
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	if noFollow {
		flags |= unix.O_NOFOLLOW
	}
	return unix.Openat(dirfd, name, flags, 0)
}

// readNames lists a directory through a fresh descriptor, so the read
// offset of fd itself does not matter.
func readNames(fd int) ([]string, error) {
	own, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(own), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

func readlinkAt(dirfd int, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// removeAt removes name beneath dirfd and, for a directory, all it holds,
// never following a link.
func removeAt(dirfd int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(dirfd, name, 0)
	}
	fd, err := openDir(dirfd, name, true)
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

func show(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

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
//   - Only a file's data extents are copied (SEEK_DATA/SEEK_HOLE), its
//     holes stay holes: a sparse file costs the copy what it costs the
//     source, not its apparent size.
//   - Hard links within the tree stay hard links: the second and later
//     names of a source inode are linked, beneath the destination, to the
//     file this pass wrote for the first, checked to be that very inode;
//     never to anything else.
//   - Going back, what is written is bounded (Copy.MaxBytes): data in 4 KiB
//     blocks plus a block per entry made. Over it, Back stops before the
//     file that would cross it, so every file is either old or new.
//   - Everything written is owned by one uid:gid (the sandbox's ids going
//     in, the workspace owner's going back) with permission bits only: no
//     set-id bits (directories keep a sticky bit), no xattrs (file
//     capabilities, ACLs).
//   - Devices, fifos and sockets are not copied.
//   - Going back, entries deleted in the copy are deleted in the
//     workspace, beneath it and without following links.
package workspace

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"

	"github.com/docker/go-units"
	"golang.org/x/sys/unix"
)

// Dropped is told about each entry left out of a copy and why.
type Dropped func(path, reason string)

// Copy is a sandbox's private copy of a host workspace.
type Copy struct {
	// Orig is the host workspace, Dir the copy.
	Orig, Dir string
	// MaxBytes bounds what Back writes into Orig: file data, in 4 KiB
	// blocks (holes are free), plus one block per file, directory or link
	// it makes. 0 is no bound.
	MaxBytes int64
	dropped  Dropped
	// kept are workspace paths In left out: Back must not take their
	// absence from the copy for a deletion.
	kept     map[string]bool
	dev, ino uint64
	// copied is what In wrote of each regular file: Back leaves a file
	// the sandbox never touched alone.
	copied map[string]stamp
}

// stamp identifies one state of a file: a write, chmod or utimes changes
// the ctime, and no one can set it back.
type stamp struct {
	ino  uint64
	ctim unix.Timespec
}

// Dir is the host workspace as the caller found it: its path and, when
// known (Ino != 0), the device and inode it had, which every later open of
// the path must find again.
type Dir struct {
	Path     string
	Dev, Ino uint64
}

// openOrig opens the host workspace by its path (the user named it; a
// symlink there is theirs) and refuses a directory other than the one the
// caller checked: whoever can write a parent could swap it, during the run,
// for a link to a directory root must never copy from or write to.
func (c *Copy) openOrig() (int, error) {
	fd, err := openDir(unix.AT_FDCWD, c.Orig, false)
	if err != nil {
		return -1, fmt.Errorf("workspace %s: %w", c.Orig, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("workspace %s: %w", c.Orig, err)
	}
	if c.ino != 0 && (st.Dev != c.dev || st.Ino != c.ino) {
		unix.Close(fd)
		return -1, fmt.Errorf("workspace %s: %w", c.Orig, ErrReplaced)
	}
	return fd, nil
}

// ErrReplaced: the workspace path leads to another directory than the one
// the sandbox was given; nothing is copied or written back.
var ErrReplaced = errors.New("replaced by another directory since the sandbox started; refusing to copy")

// In fills dir, an existing empty directory, with a copy of orig owned by
// uid:gid. Files the workspace's owner could not read themselves are left
// out (a root-only file hard-linked into the workspace stays private).
func In(ws Dir, dir string, uid, gid int, dropped Dropped) (*Copy, error) {
	orig := ws.Path
	c := &Copy{Orig: orig, Dir: dir, dropped: dropped, kept: map[string]bool{}, dev: ws.Dev, ino: ws.Ino, copied: map[string]stamp{}}
	sfd, err := c.openOrig()
	if err != nil {
		return nil, err
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
	m := &mirror{c: c, droot: dfd, uid: uid, gid: gid, ownerUID: st.Uid, ownerGID: st.Gid, links: map[inode]written{}}
	if err := m.dir(sfd, dfd, ""); err != nil {
		return nil, fmt.Errorf("workspace copy of %s: %w", orig, err)
	}
	// Linking a later name moved the ctime of its inode: read every
	// stamp again now that the copy is done (nothing else writes it yet).
	for p := range c.copied {
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(dir, p), &st) == nil {
			c.copied[p] = stamp{ino: st.Ino, ctim: st.Ctim}
		}
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
	dfd, err := c.openOrig()
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		return fmt.Errorf("workspace copy-back to %s: %w", c.Orig, err)
	}
	m := &mirror{c: c, back: true, root: sfd, droot: dfd, uid: int(st.Uid), gid: int(st.Gid), links: map[inode]written{}, max: c.MaxBytes}
	if err := m.dir(sfd, dfd, ""); err != nil {
		return fmt.Errorf("workspace copy-back to %s: %w", c.Orig, err)
	}
	return nil
}

// BudgetError is a write-back stopped by Copy.MaxBytes. Everything before
// Path was written back, Path and what follows were not.
type BudgetError struct {
	Path string
	Max  int64
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("write-back over its budget of %s at %s: stopped there, files not written back keep their old contents",
		units.BytesSize(float64(e.Max)), e.Path)
}

// block is what the budget charges for an entry, and the unit data is
// rounded up to.
const block = 4096

// mirror copies one tree onto another in one direction.
type mirror struct {
	c    *Copy
	back bool
	// root is the source tree's root (going back: links are checked
	// against it), droot the destination's.
	root, droot int
	uid, gid    int
	// ownerUID and ownerGID own the workspace (going in: what they can't
	// read is left out).
	ownerUID, ownerGID uint32
	// links maps each multiply-linked source inode to the file this pass
	// wrote for it, which its other names are linked to.
	links map[inode]written
	// max bounds used (bytes, see Copy.MaxBytes); 0 is no bound.
	max, used int64
}

type inode struct{ dev, ino uint64 }

// written is a file a pass wrote: its path in the destination and the
// inode it got there.
type written struct {
	rel string
	inode
}

// charge counts n more bytes written, or stops at p if that is over the
// budget.
func (m *mirror) charge(p string, n int64) error {
	if m.max > 0 && m.used+n > m.max {
		return &BudgetError{Path: p, Max: m.max}
	}
	m.used += n
	return nil
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
	made := errors.Is(err, unix.ENOENT)
	if made {
		if err := m.charge(p, block); err != nil {
			return err
		}
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
	mode := st.Mode&0o777 | st.Mode&unix.S_ISVTX
	if m.back && !made {
		// A directory the workspace already had keeps its owner; only a
		// mode the sandbox changed comes back.
		if dst.Mode&(0o777|unix.S_ISVTX) == mode {
			return nil
		}
	} else if err := unix.Fchown(cd, m.uid, m.gid); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := unix.Fchmod(cd, mode); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

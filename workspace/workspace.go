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
	"os"
	"path"
	"strings"

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
	m := &mirror{c: c, droot: dfd, uid: uid, gid: gid, ownerUID: st.Uid, ownerGID: st.Gid, links: map[inode]written{}}
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
	if errors.Is(err, unix.ENOENT) {
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
	defer unix.Close(in)
	var now unix.Stat_t
	if err := unix.Fstat(in, &now); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if now.Mode&unix.S_IFMT != unix.S_IFREG {
		m.skip(p, "changed while being copied")
		return nil
	}
	src := inode{uint64(now.Dev), now.Ino}
	if now.Nlink > 1 {
		if w, ok := m.links[src]; ok {
			if linked, err := m.hardlink(dfd, name, p, w); linked || err != nil {
				return err
			}
		}
	}
	extents, err := m.extents(in, now.Size, p)
	if err != nil {
		return err
	}
	var made unix.Stat_t
	err = m.replace(dfd, name, p, func(fd int, tmp string) error {
		err := unix.Ftruncate(fd, now.Size)
		for _, e := range extents {
			if err != nil {
				break
			}
			err = copyRange(in, fd, e[0], e[1])
		}
		if err == nil {
			err = unix.Fchown(fd, m.uid, m.gid)
		}
		if err == nil {
			// After the chown, which would clear set-id bits anyway.
			err = unix.Fchmod(fd, perm)
		}
		if err == nil {
			err = unix.Fstat(fd, &made)
		}
		if err == nil {
			err = unix.UtimesNanoAt(dfd, tmp, []unix.Timespec{now.Atim, now.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
		}
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		return err
	})
	if err == nil && now.Nlink > 1 {
		if _, ok := m.links[src]; !ok {
			m.links[src] = written{rel: p, inode: inode{uint64(made.Dev), made.Ino}}
		}
	}
	return err
}

// hardlink makes name another link to w, the file this pass wrote for the
// same source inode: linked beneath the destination's root through no
// symlink, at a temporary name, and kept only if it is w's very inode.
// Anything else (w moved or replaced since) reports false: copy instead.
func (m *mirror) hardlink(dfd int, name, p string, w written) (bool, error) {
	dir, base := path.Split(w.rel)
	if dir == "" {
		dir = "."
	}
	pfd, err := unix.Openat2(m.droot, dir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return false, nil
	}
	defer unix.Close(pfd)
	if err := m.charge(p, block); err != nil {
		return false, err
	}
	tmp := tempName()
	// No AT_SYMLINK_FOLLOW: base itself, were it a symlink now, is not
	// followed, and the check below refuses the link.
	if err := unix.Linkat(pfd, base, dfd, tmp, 0); err != nil {
		return false, nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, tmp, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil ||
		st.Mode&unix.S_IFMT != unix.S_IFREG || uint64(st.Dev) != w.dev || st.Ino != w.ino {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return false, nil
	}
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return true, fmt.Errorf("%s: %w", p, err)
	}
	return true, nil
}

// extents lists the data of the size bytes of fd as [offset, length]
// pairs, holes left out, and charges the budget for them (and the file)
// before any is written.
func (m *mirror) extents(fd int, size int64, p string) ([][2]int64, error) {
	var out [][2]int64
	cost := int64(block)
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		end := size
		if err != nil {
			data = off // no SEEK_DATA here: the rest is data
		} else if hole, err := unix.Seek(fd, data, unix.SEEK_HOLE); err == nil && hole < size {
			end = hole
		}
		if data >= end {
			break
		}
		out = append(out, [2]int64{data, end - data})
		cost += (end+block-1)/block*block - data/block*block
		if m.max > 0 && m.used+cost > m.max {
			break // charge says so below; no need to look further
		}
		off = end
	}
	if err := m.charge(p, cost); err != nil {
		return nil, err
	}
	return out, nil
}

// copyRange copies n bytes at off from in to the same offset of out, in
// the kernel where it can. A source shorter than expected (it shrank)
// just ends the copy: the rest stays a hole.
func copyRange(in, out int, off, n int64) error {
	for n > 0 {
		roff, woff := off, off
		c, err := unix.CopyFileRange(in, &roff, out, &woff, int(min(n, 1<<30)), 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return copyRangeRW(in, out, off, n)
		}
		if c == 0 {
			return nil
		}
		off, n = off+int64(c), n-int64(c)
	}
	return nil
}

// copyRangeRW is copyRange by pread and pwrite, for filesystems (or pairs
// of them) copy_file_range does not serve.
func copyRangeRW(in, out int, off, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		c, err := unix.Pread(in, buf[:min(n, int64(len(buf)))], off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if c == 0 {
			return nil
		}
		for w := 0; w < c; {
			k, err := unix.Pwrite(out, buf[w:c], off+int64(w))
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return err
			}
			w += k
		}
		off, n = off+int64(c), n-int64(c)
	}
	return nil
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
	if err := m.charge(p, block); err != nil {
		return err
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

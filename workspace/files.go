package workspace

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

func (m *mirror) file(sfd, dfd int, name, p string, st *unix.Stat_t) error {
	if !m.readable(st, 4) {
		m.skip(p, "not readable by the workspace owner")
		return nil
	}
	perm := st.Mode & 0o777
	if m.back {
		// Untouched since In copied it (a write, chmod or utimes changes
		// the ctime, which no one can set): the workspace keeps what it
		// has, a host-side edit made during the run included.
		if s, ok := m.c.copied[p]; ok && s.ino == st.Ino && s.ctim == st.Ctim {
			return nil
		}
	}
	var dst unix.Stat_t
	err := unix.Fstatat(dfd, name, &dst, unix.AT_SYMLINK_NOFOLLOW)
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
				if err == nil {
					m.stamp(dfd, name, p)
				}
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
			err = CopyRange(in, fd, e[0], e[1])
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
	if err == nil {
		m.stamp(dfd, name, p)
	}
	return err
}

// stamp records, going in, the copy's inode and ctime of p (after the
// rename, which changes the ctime too), for Back to tell a file the
// sandbox never touched.
func (m *mirror) stamp(dfd int, name, p string) {
	if m.back {
		return
	}
	var st unix.Stat_t
	if unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		m.c.copied[p] = stamp{ino: st.Ino, ctim: st.Ctim}
	}
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
	_ = ForExtents(fd, size, func(off, n int64) error {
		out = append(out, [2]int64{off, n})
		cost += DataBlocks(off, n)
		if m.max > 0 && m.used+cost > m.max {
			return errOver // charge says so below; no need to look further
		}
		return nil
	})
	if err := m.charge(p, cost); err != nil {
		return nil, err
	}
	return out, nil
}

var errOver = errors.New("over the budget")

// ForExtents calls fn with each data extent of the first size bytes of fd,
// in order, holes left out: a sparse file is never read for its holes'
// zeros. Where the filesystem cannot tell (no SEEK_DATA) the rest is one
// extent. An error from fn stops the walk and is returned.
func ForExtents(fd int, size int64, fn func(off, n int64) error) error {
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		}
		end := size
		if err != nil {
			data = off // no SEEK_DATA here: the rest is data
		} else if hole, err := unix.Seek(fd, data, unix.SEEK_HOLE); err == nil && hole < size {
			end = hole
		}
		if data >= end {
			return nil
		}
		if err := fn(data, end-data); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// DataBlocks is what n bytes of data at off take on disk, in whole blocks.
func DataBlocks(off, n int64) int64 {
	return (off+n+block-1)/block*block - off/block*block
}

// CopyRange copies n bytes at off from in to the same offset of out, in
// the kernel where it can. A source shorter than expected (it shrank)
// just ends the copy: the rest stays a hole.
func CopyRange(in, out int, off, n int64) error {
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

// copyRangeRW is CopyRange by pread and pwrite, for filesystems (or pairs
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

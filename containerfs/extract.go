package containerfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/workspace"
)

// ErrEscape: a tar entry names a path outside the destination, or through
// a symlink.
var ErrEscape = errors.New("leaves the destination directory")

// unpacker writes a tar stream beneath one directory descriptor.
type unpacker struct {
	root int
	// owner gives the on-disk ids of an entry from its header.
	owner func(h *tar.Header) (int, int)
	warn  Warn
	// fsUID and fsGID create what is written (see asOwner).
	fsUID, fsGID int
	// b bounds what is written: data blocks and a block per entry.
	b budget
	// j records what is half-written, for a failure to take back.
	j *journal
}

func (u *unpacker) skip(name, why string) {
	if u.warn != nil {
		u.warn(name, why)
	}
}

func (u *unpacker) run(r io.Reader) error {
	return u.guard(func() error { return u.loop(r) })
}

// guard runs fn, the copy, as the owner of what it creates; a copy that
// fails removes its temporary files and the entries it made at the top
// of the destination (see journal).
func (u *unpacker) guard(fn func() error) error {
	if u.j == nil {
		u.j = new(Interrupt).journal()
	}
	err := asOwner(u.fsUID, u.fsGID, fn)
	u.j.finish(err == nil)
	return err
}

// put takes an entry of a walk (the unpacker as a packer's sink): a
// file's data extents are read from fd and written as they are, its
// holes as holes, and the whole is charged to the budget before any of
// it is written.
func (u *unpacker) put(hdr *tar.Header, fd int) error {
	var data content
	cost := int64(block)
	if hdr.Typeflag == tar.TypeReg {
		x := &extents{fd: fd, size: hdr.Size}
		err := workspace.ForExtents(fd, hdr.Size, func(off, n int64) error {
			x.list = append(x.list, [2]int64{off, n})
			cost += workspace.DataBlocks(off, n)
			if u.b.over(cost) {
				return errOver // no need to look further
			}
			return nil
		})
		if err != nil && !errors.Is(err, errOver) {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		data = x
	}
	if err := u.b.charge(hdr.Name, cost); err != nil {
		return err
	}
	return u.entry(hdr, data)
}

var errOver = errors.New("over the budget")

func (u *unpacker) close() error { return nil }

// content is a regular file's data, written into a new empty file.
type content interface {
	write(u *unpacker, f *os.File) error
}

// extents are the data extents list of the size bytes of fd.
type extents struct {
	fd   int
	size int64
	list [][2]int64
}

func (x *extents) write(u *unpacker, f *os.File) error {
	out := int(f.Fd())
	if err := unix.Ftruncate(out, x.size); err != nil {
		return err
	}
	for _, e := range x.list {
		if err := workspace.CopyRange(x.fd, out, e[0], e[1]); err != nil {
			return err
		}
	}
	return nil
}

// streamed is a file's data read from a tar stream: blocks of zeros in
// it become holes, each block written is charged as it comes.
type streamed struct{ r io.Reader }

func (s streamed) write(u *unpacker, f *os.File) error {
	return copySparse(f, s.r, func(n int64) error { return u.b.charge(f.Name(), n) })
}

func (u *unpacker) loop(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the tar stream: %w", err)
		}
		if err := u.b.charge(hdr.Name, block); err != nil {
			return err
		}
		if err := u.entry(hdr, streamed{tr}); err != nil {
			return err
		}
	}
}

// clean makes a tar name relative to the destination: "" is the
// destination itself; a name that climbs out of it is refused.
func clean(name string) (string, error) {
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("tar entry %q: %w", name, ErrEscape)
		}
	}
	p := path.Clean("/" + name)[1:]
	return p, nil
}

// parent opens the directory that holds rel, beneath the root and through
// no symlink; missing directories are made (as tar does), owned as uid:gid.
func (u *unpacker) parent(rel string, uid, gid int) (int, error) {
	dir := path.Dir(rel)
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(u.root, dir, how)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("%s: %w (a symlink or a file on the way)", rel, ErrEscape)
		}
		return fd, err
	}
	// Walk down making each missing one.
	fd, err = unix.Dup(u.root)
	if err != nil {
		return -1, err
	}
	for i, part := range strings.Split(dir, "/") {
		if err := u.j.mkdir(fd, part, 0o755, i == 0); err == nil {
			_ = unix.Fchownat(fd, part, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
		} else if !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return -1, fmt.Errorf("%s: %w", rel, err)
		}
		next, err := workspace.OpenDir(fd, part, true)
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				return -1, fmt.Errorf("%s: %w (a symlink or a file on the way)", rel, ErrEscape)
			}
			return -1, fmt.Errorf("%s: %w", rel, err)
		}
		fd = next
	}
	return fd, nil
}

func (u *unpacker) entry(hdr *tar.Header, data content) error {
	rel, err := clean(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		return nil // the destination itself keeps what it has
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, 0, tar.TypeSymlink, tar.TypeLink, tar.TypeGNUSparse:
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		u.skip(rel, "special file (device, fifo or socket) not copied")
		return nil
	default:
		u.skip(rel, fmt.Sprintf("tar entry of type %q not copied", hdr.Typeflag))
		return nil
	}
	uid, gid := u.owner(hdr)
	pfd, err := u.parent(rel, uid, gid)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	base := path.Base(rel)
	var old unix.Stat_t
	oldErr := unix.Fstatat(pfd, base, &old, unix.AT_SYMLINK_NOFOLLOW)
	if oldErr != nil && !errors.Is(oldErr, unix.ENOENT) {
		return fmt.Errorf("%s: %w", rel, oldErr)
	}
	exists := oldErr == nil
	// A new entry at the top of the destination is the copy's own: a
	// failed copy takes it back.
	top := !strings.Contains(rel, "/")
	isDir := exists && old.Mode&unix.S_IFMT == unix.S_IFDIR
	if hdr.Typeflag == tar.TypeDir {
		if isDir {
			return nil // an existing directory keeps its owner and mode
		}
		if exists {
			if err := unix.Unlinkat(pfd, base, 0); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		if err := u.j.mkdir(pfd, base, 0o700, top && !exists); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		// O_NOFOLLOW: a directory swapped for a link since is not
		// followed to chown or chmod what it points at.
		fd, err := workspace.OpenDir(pfd, base, true)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		defer unix.Close(fd)
		if err := u.owned(rel, unix.Fchown(fd, uid, gid)); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if err := unix.Fchmod(fd, uint32(hdr.Mode)&(0o777|unix.S_ISVTX)); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		return nil
	}
	if isDir {
		if err := workspace.RemoveAt(pfd, base); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
	}
	tmp := workspace.TempName()
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		err = u.j.create(pfd, tmp, func() error { return unix.Symlinkat(hdr.Linkname, pfd, tmp) })
		if err == nil {
			err = u.owned(rel, unix.Fchownat(pfd, tmp, uid, gid, unix.AT_SYMLINK_NOFOLLOW))
		}
	case tar.TypeLink:
		err = u.j.create(pfd, tmp, func() error { return u.hardlink(pfd, tmp, hdr.Linkname) })
	default:
		err = u.file(data, pfd, tmp, rel, hdr, uid, gid)
	}
	if err == nil {
		err = u.j.commit(pfd, tmp, base, top && !exists)
	}
	if err != nil {
		u.j.discard(pfd, tmp)
		if errors.Is(err, ErrBudget) {
			return err // it names the entry already
		}
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}

// owned passes the error of giving rel its owner, but for an owner the
// filesystem cannot store (an id outside an idmapped mount's map, or not
// mapped in the user namespace that mounted it): rel is left to the id
// that created it, with a warning.
func (u *unpacker) owned(rel string, err error) error {
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOVERFLOW) {
		u.skip(rel, "owner not representable on this filesystem; left to the container's root")
		return nil
	}
	return err
}

func (u *unpacker) file(data content, pfd int, tmp, rel string, hdr *tar.Header, uid, gid int) error {
	fd := -1
	err := u.j.create(pfd, tmp, func() (err error) {
		fd, err = unix.Openat(pfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), rel)
	err = data.write(u, f)
	if err == nil {
		err = u.owned(rel, unix.Fchown(fd, uid, gid))
	}
	if err == nil {
		// After the chown, which would clear set-id bits anyway.
		err = f.Chmod(os.FileMode(hdr.Mode & 0o777))
	}
	if err == nil {
		mt := hdr.ModTime
		if mt.IsZero() {
			mt = time.Now()
		}
		ts := unix.NsecToTimespec(mt.UnixNano())
		err = unix.UtimesNanoAt(pfd, tmp, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// hardlink links tmp to target, an earlier entry of the stream: found
// beneath the root through no symlink, and only a regular file.
func (u *unpacker) hardlink(pfd int, tmp, target string) error {
	rel, err := clean(target)
	if err != nil || rel == "" {
		return fmt.Errorf("hard link to %q: %w", target, ErrEscape)
	}
	dir, base := path.Split(rel)
	if dir == "" {
		dir = "."
	}
	tfd, err := unix.Openat2(u.root, dir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("hard link to %q: %w (a symlink or a file on the way)", target, ErrEscape)
	}
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", target, err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hard link to %q: %w", target, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("hard link to %q: not a regular file", target)
	}
	// No AT_SYMLINK_FOLLOW: were base swapped for a symlink since, the
	// link is to the symlink itself, still beneath the root.
	return unix.Linkat(tfd, base, pfd, tmp, 0)
}

// copySparse copies r to f leaving blocks of zeros as holes: a file the
// container made sparse (or of zeros) costs the destination no more
// disk than it cost the source. charge is told of each run of blocks
// before it is written.
func copySparse(f *os.File, r io.Reader, charge func(int64) error) error {
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := io.ReadFull(r, buf)
		for i := 0; i < n; {
			// The next run of blocks holding data.
			for i < n && allZero(buf[i:min(i+block, n)]) {
				i += block
			}
			j := i
			for j < n && !allZero(buf[j:min(j+block, n)]) {
				j += block
			}
			j = min(j, n)
			if i < j {
				if cerr := charge(int64(j-i+block-1) / block * block); cerr != nil {
					return cerr
				}
				if _, werr := f.WriteAt(buf[i:j], off+int64(i)); werr != nil {
					return werr
				}
			}
			i = j
		}
		off += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return f.Truncate(off)
		}
		if err != nil {
			return err
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

package containerfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Options of one copy.
type Options struct {
	// Archive keeps owners (`cp -a`): going in, the source's ids taken as
	// container ids; going out, the ids the container sees.
	Archive bool
	// Warn is told about each entry left out.
	Warn Warn
	// MaxBytes bounds what a copy writes, a block (4 KiB) per entry plus
	// its data: into a file, the data blocks written (a hole is free);
	// into a tar stream, the file's full size (holes become zeros in a
	// plain tar). The copy stops with ErrBudget before the file that
	// would cross it. 0 is no bound.
	MaxBytes int64
	// Interrupt, if set, lets a signal handler stop the copy (see
	// Interrupt.Now).
	Interrupt *Interrupt
}

// journal is a new record of what the copy writes.
func (o Options) journal() *journal {
	in := o.Interrupt
	if in == nil {
		in = new(Interrupt)
	}
	return in.journal()
}

// Error classes of a copy, besides fs.ErrNotExist for a missing source
// or destination parent.
var (
	// ErrNotDir: the destination must be a directory and is not.
	ErrNotDir = errors.New("not a directory")
	// ErrDirOntoFile: a directory copied onto an existing non-directory.
	ErrDirOntoFile = errors.New("cannot copy a directory onto a non-directory")
)

// source is one side's SRC, split as `docker cp` reads it.
type source struct {
	parent int // directory holding it (closed by the caller)
	name   string
	// base is the name the copy gets inside a destination directory.
	base string
	// contents: SRC ends in "/." (or is the root): only what the
	// directory holds is copied.
	contents bool
	isDir    bool
}

// target is where a copy lands: a directory descriptor and, unless the
// copy goes into it as its own name, the name it gets there.
type target struct {
	dir int
	// name "" means the source keeps its base name (or, copying
	// contents, lands in dir itself).
	name string
}

// splitSrc returns the parent path, the final name and whether p asks
// for a directory's contents.
func splitSrc(p string) (dir, name string, contents bool) {
	contents = strings.HasSuffix(p, "/.") || p == "."
	c := path.Clean("/" + p)
	if c == "/" {
		return "/", ".", true
	}
	return path.Dir(c), path.Base(c), contents
}

// splitHostSrc is splitSrc for a host path, relative to the working
// directory.
func splitHostSrc(p string) (dir, name string, contents bool, err error) {
	contents = strings.HasSuffix(p, "/.") || p == "."
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", "", false, fmt.Errorf("%s: %w", p, err)
	}
	if abs == "/" {
		return "/", ".", true, nil
	}
	return filepath.Dir(abs), filepath.Base(abs), contents, nil
}

// CopyOut copies the container's src onto the host path dest, or, with
// dest "", writes it to w as a tar stream.
func (r *Root) CopyOut(src, dest string, w io.Writer, o Options) error {
	dir, name, contents := splitSrc(src)
	pfd, err := r.inRoot(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	defer unix.Close(pfd)
	s, err := statSrc(pfd, name, src, contents)
	if err != nil {
		return err
	}
	// Headers carry the ids the container sees.
	ids := func(uid, gid uint32) (int, int) {
		u, _ := r.uids.ToContainer(uid)
		g, _ := r.gids.ToContainer(gid)
		return int(u), int(g)
	}
	if dest == "" {
		p := newPacker(newTarSink(w, o.MaxBytes), ids, o.Warn)
		top := s.base
		if s.contents {
			top = ""
		}
		if err := p.entry(pfd, name, top); err != nil {
			return err
		}
		return p.close()
	}
	t, err := hostTarget(dest, s)
	if err != nil {
		return err
	}
	defer unix.Close(t.dir)
	uid, gid := os.Getuid(), os.Getgid()
	owner := func(h *tar.Header) (int, int) {
		if o.Archive {
			return h.Uid, h.Gid
		}
		return uid, gid
	}
	return pipe(pfd, name, s, t, ids, &unpacker{owner: owner, warn: o.Warn, b: budget{max: o.MaxBytes}, j: o.journal()})
}

// CopyIn copies the host path src into the container's dest or, with src
// "", the tar stream read from rd into the container directory dest.
func (r *Root) CopyIn(src string, rd io.Reader, dest string, o Options) error {
	rootUID, ok1 := r.uids.ToHost(0)
	rootGID, ok2 := r.gids.ToHost(0)
	if !ok1 || !ok2 {
		return errors.New("the container's root is not mapped by its user namespace")
	}
	owner := func(h *tar.Header) (int, int) {
		if !o.Archive || h.Uid < 0 || h.Gid < 0 {
			return int(rootUID), int(rootGID)
		}
		u, ok1 := r.uids.ToHost(uint32(h.Uid))
		g, ok2 := r.gids.ToHost(uint32(h.Gid))
		if !ok1 || !ok2 {
			if o.Warn != nil {
				o.Warn(h.Name, fmt.Sprintf("owner %d:%d not mapped in the container; given to its root", h.Uid, h.Gid))
			}
			return int(rootUID), int(rootGID)
		}
		return int(u), int(g)
	}
	if src == "" {
		fd, err := r.inRoot(dest, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("%s: %w", dest, err)
		}
		defer unix.Close(fd)
		u := &unpacker{root: fd, owner: owner, warn: o.Warn, fsUID: int(rootUID), fsGID: int(rootGID), b: budget{max: o.MaxBytes}, j: o.journal()}
		return u.run(rd)
	}
	dir, name, contents, err := splitHostSrc(src)
	if err != nil {
		return err
	}
	pfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	defer unix.Close(pfd)
	s, err := statSrc(pfd, name, src, contents)
	if err != nil {
		return err
	}
	t, err := r.containerTarget(dest, s)
	if err != nil {
		return err
	}
	defer unix.Close(t.dir)
	ids := func(uid, gid uint32) (int, int) { return int(uid), int(gid) }
	return pipe(pfd, name, s, t, ids, &unpacker{owner: owner, warn: o.Warn, fsUID: int(rootUID), fsGID: int(rootGID), b: budget{max: o.MaxBytes}, j: o.journal()})
}

func statSrc(pfd int, name, shown string, contents bool) (*source, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, fmt.Errorf("%s: %w", shown, err)
	}
	s := &source{parent: pfd, name: name, base: name, contents: contents, isDir: st.Mode&unix.S_IFMT == unix.S_IFDIR}
	if !s.isDir && (contents || strings.HasSuffix(shown, "/")) {
		return nil, fmt.Errorf("%s: %w", shown, ErrNotDir)
	}
	if s.contents && name == "." {
		s.base = ""
	}
	return s, nil
}

// place decides, as `docker cp` does, where a source lands given what the
// destination path is: exists tells whether it does, isDir whether as a
// directory, slash whether it was written with a trailing slash.
func place(s *source, shown string, exists, isDir, slash bool) (into bool, err error) {
	switch {
	case exists && isDir:
		return true, nil // into it (for contents: onto it)
	case exists && slash:
		return false, fmt.Errorf("%s: %w", shown, ErrNotDir)
	case exists && s.isDir:
		return false, fmt.Errorf("%s: %w", shown, ErrDirOntoFile)
	case !exists && slash && !s.isDir:
		return false, fmt.Errorf("%s: destination directory: %w", shown, fs.ErrNotExist)
	}
	return false, nil
}

// containerTarget resolves dest in the container: followed as the
// container would (within its root), a missing parent an error.
func (r *Root) containerTarget(dest string, s *source) (*target, error) {
	slash := strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, "/.")
	var st unix.Stat_t
	exists := false
	if fd, err := r.inRoot(dest, unix.O_PATH); err == nil {
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dest, err)
		}
		exists = true
	} else if !errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("%s: %w", dest, err)
	}
	isDir := exists && st.Mode&unix.S_IFMT == unix.S_IFDIR
	into, err := place(s, dest, exists, isDir, slash)
	if err != nil {
		return nil, err
	}
	if into {
		fd, err := r.inRoot(dest, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dest, err)
		}
		return &target{dir: fd}, nil
	}
	c := path.Clean("/" + dest)
	fd, err := r.inRoot(path.Dir(c), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("%s: parent directory: %w", dest, err)
	}
	return &target{dir: fd, name: path.Base(c)}, nil
}

// hostTarget resolves dest on the host: its parent as the caller named
// it, its final name never followed (a symlink there is replaced by a
// file, refused for a directory).
func hostTarget(dest string, s *source) (*target, error) {
	slash := strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, "/.")
	c := filepath.Clean(dest)
	dir, name := filepath.Dir(c), filepath.Base(c)
	if c == "/" {
		dir, name = "/", "."
	}
	pfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: parent directory: %w", dest, err)
	}
	var st unix.Stat_t
	err = unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		unix.Close(pfd)
		return nil, fmt.Errorf("%s: %w", dest, err)
	}
	exists := err == nil
	isDir := exists && st.Mode&unix.S_IFMT == unix.S_IFDIR
	into, err := place(s, dest, exists, isDir, slash)
	if err != nil {
		unix.Close(pfd)
		return nil, err
	}
	if !into {
		return &target{dir: pfd, name: name}, nil
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	unix.Close(pfd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dest, err)
	}
	return &target{dir: fd}, nil
}

// pipe copies the source into the target: the walk hands each entry to
// the unpacker directly, which copies a file's data extents from its
// descriptor (never a hole's zeros), as the owner of what it writes.
func pipe(pfd int, name string, s *source, t *target, ids func(uint32, uint32) (int, int), u *unpacker) error {
	top := t.name
	if top == "" {
		top = s.base
		if s.contents {
			top = ""
		}
	}
	if top == "" && !s.isDir {
		top = name
	}
	u.root = t.dir
	p := newPacker(u, ids, u.warn)
	return u.guard(func() error { return p.entry(pfd, name, top) })
}

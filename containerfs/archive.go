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

	"github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/workspace"
)

// Warn is told about each entry left out of a copy and why.
type Warn func(path, reason string)

// packer walks a tree through descriptors and hands each entry to a
// sink: a tar stream (tarSink) or, host to container and back, the
// unpacker itself, which copies a file's data extents from its
// descriptor.
type packer struct {
	out sink
	// ids gives the owner a header records for a file's on-disk ids.
	ids   func(uid, gid uint32) (int, int)
	warn  Warn
	links map[[2]uint64]string
}

// sink takes the entries of a walk: hdr, and for a regular file fd, open
// on its hdr.Size bytes (-1 otherwise).
type sink interface {
	put(hdr *tar.Header, fd int) error
	close() error
}

func newPacker(out sink, ids func(uid, gid uint32) (int, int), warn Warn) *packer {
	return &packer{out: out, ids: ids, warn: warn, links: map[[2]uint64]string{}}
}

// block is what the budget charges for an entry, and the unit data is
// rounded up to.
const block = 4096

// ErrBudget: the copy would exceed Options.MaxBytes.
var ErrBudget = errors.New("over the copy's budget")

// budget bounds what a copy writes (see Options.MaxBytes).
type budget struct {
	// max is the bound, 0 none.
	max, used int64
}

// charge counts n more bytes written for name, or refuses them.
func (b *budget) charge(name string, n int64) error {
	if b.max > 0 && b.used+n > b.max {
		return fmt.Errorf("%s: %w of %s: stopped before it, nothing of it written", show(name), ErrBudget, units.BytesSize(float64(b.max)))
	}
	b.used += n
	return nil
}

// over tells whether n more bytes would cross the bound.
func (b *budget) over(n int64) bool { return b.max > 0 && b.used+n > b.max }

// tarSink writes the entries as a plain tar stream. archive/tar writes
// no sparse entries (it reads them), so a hole is streamed as zeros: the
// budget counts a file's full size, and its holes are made up, never
// read.
type tarSink struct {
	tw *tar.Writer
	b  budget
}

func newTarSink(w io.Writer, max int64) *tarSink {
	return &tarSink{tw: tar.NewWriter(w), b: budget{max: max}}
}

func (s *tarSink) put(hdr *tar.Header, fd int) error {
	n := int64(block)
	if hdr.Typeflag == tar.TypeReg {
		n += workspace.DataBlocks(0, hdr.Size)
	}
	if err := s.b.charge(hdr.Name, n); err != nil {
		return err
	}
	if err := s.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	if err := streamData(s.tw, fd, hdr.Size); err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	return nil
}

func (s *tarSink) close() error { return s.tw.Close() }

// streamData writes exactly size bytes of fd to w: its data extents as
// read, holes and whatever the file lost since its stat as zeros.
func streamData(w io.Writer, fd int, size int64) error {
	buf := make([]byte, 256<<10)
	var pos int64
	err := workspace.ForExtents(fd, size, func(off, n int64) error {
		if err := writeZeros(w, off-pos); err != nil {
			return err
		}
		pos = off
		for n > 0 {
			c, err := unix.Pread(fd, buf[:min(n, int64(len(buf)))], off)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return err
			}
			if c == 0 {
				return nil // it shrank: zeros from here
			}
			if _, err := w.Write(buf[:c]); err != nil {
				return err
			}
			off, n, pos = off+int64(c), n-int64(c), off+int64(c)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeZeros(w, size-pos)
}

var zeroBlock [64 << 10]byte

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		c := min(n, int64(len(zeroBlock)))
		if _, err := w.Write(zeroBlock[:c]); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

func (p *packer) skip(name, why string) {
	if p.warn != nil {
		p.warn(name, why)
	}
}

// entry writes name (beneath dirfd, never followed) as tarName; a
// directory with tarName "" writes only what it holds, unprefixed.
func (p *packer) entry(dirfd int, name, tarName string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) && tarName != "" {
			p.skip(tarName, "removed while being copied")
			return nil
		}
		return fmt.Errorf("%s: %w", show(tarName), err)
	}
	uid, gid := p.ids(st.Uid, st.Gid)
	hdr := &tar.Header{
		Name:    tarName,
		Mode:    int64(st.Mode & 0o777),
		Uid:     uid,
		Gid:     gid,
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return p.dir(dirfd, name, tarName, hdr, &st)
	case unix.S_IFREG:
		return p.file(dirfd, name, hdr, &st)
	case unix.S_IFLNK:
		target, err := workspace.ReadlinkAt(dirfd, name)
		if err != nil {
			return fmt.Errorf("%s: %w", tarName, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return p.out.put(hdr, -1)
	}
	p.skip(tarName, "special file (device, fifo or socket) not copied")
	return nil
}

func (p *packer) dir(dirfd int, name, tarName string, hdr *tar.Header, st *unix.Stat_t) error {
	fd, err := workspace.OpenDir(dirfd, name, true)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			p.skip(tarName, "changed while being copied")
			return nil
		}
		return fmt.Errorf("%s: %w", show(tarName), err)
	}
	defer unix.Close(fd)
	if tarName != "" {
		hdr.Typeflag = tar.TypeDir
		hdr.Name = tarName + "/"
		hdr.Mode |= int64(st.Mode & unix.S_ISVTX)
		if err := p.out.put(hdr, -1); err != nil {
			return err
		}
	}
	if strings.Count(tarName, "/") >= maxDepth {
		return fmt.Errorf("%s: %w", tarName, ErrTooDeep)
	}
	// Listed a batch at a time through a descriptor of its own: a
	// directory of millions of entries costs no more memory than a small
	// one.
	lfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", show(tarName), err)
	}
	list := os.NewFile(uintptr(lfd), ".")
	defer list.Close()
	for {
		names, err := list.Readdirnames(1024)
		for _, n := range names {
			if err := p.entry(fd, n, path.Join(tarName, n)); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", show(tarName), err)
		}
	}
}

// maxDepth bounds how deep a copied tree may nest: each level holds a
// descriptor and its path, and a container can nest without end.
const maxDepth = 1024

// ErrTooDeep: the tree nests deeper than maxDepth.
var ErrTooDeep = errors.New("nested too deep to copy")

func (p *packer) file(dirfd int, name string, hdr *tar.Header, st *unix.Stat_t) error {
	// O_NONBLOCK: a fifo swapped in since the stat must not hang us.
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
			p.skip(hdr.Name, "changed while being copied")
			return nil
		}
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	defer unix.Close(fd)
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	if now.Mode&unix.S_IFMT != unix.S_IFREG {
		p.skip(hdr.Name, "changed while being copied")
		return nil
	}
	if now.Nlink > 1 {
		key := [2]uint64{uint64(now.Dev), now.Ino}
		if first, ok := p.links[key]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return p.out.put(hdr, -1)
		}
		p.links[key] = hdr.Name
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, now.Size
	return p.out.put(hdr, fd)
}

func (p *packer) close() error { return p.out.close() }

func show(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

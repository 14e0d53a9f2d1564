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

// Warn is told about each entry left out of a copy and why.
type Warn func(path, reason string)

// packer writes a tree, walked through descriptors, as a tar stream.
type packer struct {
	tw *tar.Writer
	// ids gives the owner a header records for a file's on-disk ids.
	ids   func(uid, gid uint32) (int, int)
	warn  Warn
	links map[[2]uint64]string
	// max bounds used (bytes, see Options.MaxBytes); 0 is no bound.
	max, used int64
}

func newPacker(w io.Writer, ids func(uid, gid uint32) (int, int), warn Warn, max int64) *packer {
	return &packer{tw: tar.NewWriter(w), ids: ids, warn: warn, links: map[[2]uint64]string{}, max: max}
}

// block is what the budget charges for an entry, and the unit data is
// rounded up to.
const block = 4096

// ErrBudget: the copy would exceed Options.MaxBytes.
var ErrBudget = errors.New("over the copy's budget")

// charge counts n more bytes of name, or stops there.
func (p *packer) charge(name string, n int64) error {
	n = (n+block-1)/block*block + block
	if p.max > 0 && p.used+n > p.max {
		return fmt.Errorf("%s: %w of %d bytes: stopped there", show(name), ErrBudget, p.max)
	}
	p.used += n
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
	if err := p.charge(tarName, 0); err != nil {
		return err
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
		return p.tw.WriteHeader(hdr)
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
		if err := p.tw.WriteHeader(hdr); err != nil {
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
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
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
			return p.tw.WriteHeader(hdr)
		}
		p.links[key] = hdr.Name
	}
	if err := p.charge(hdr.Name, now.Size); err != nil {
		return err
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, now.Size
	if err := p.tw.WriteHeader(hdr); err != nil {
		return err
	}
	// Exactly the size the header promised: a file that grows meanwhile
	// is cut there, one that shrinks is padded with zeros.
	n, err := io.Copy(p.tw, io.LimitReader(f, now.Size))
	if err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	if n < now.Size {
		if _, err := io.CopyN(p.tw, zeros{}, now.Size-n); err != nil {
			return err
		}
	}
	return nil
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

func (p *packer) close() error { return p.tw.Close() }

func show(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

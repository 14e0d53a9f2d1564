package nixbundle

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// NARHash returns the SHA-256 of the Nix archive (NAR) serialisation of the
// file tree at path, in the form `nix path-info --json` prints it
// (`sha256-<base64>`). It reads the filesystem directly, so verifying a
// bundle needs no Nix: the result equals `nix hash path --type sha256`.
func NARHash(path string) (string, error) {
	h := sha256.New()
	w := &narWriter{w: h, buf: make([]byte, 64<<10)}
	w.str("nix-archive-1")
	if err := w.node(path); err != nil {
		return "", err
	}
	return "sha256-" + base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

type narWriter struct {
	w   hash.Hash
	buf []byte
	n   [8]byte
}

func (w *narWriter) int(n uint64) {
	binary.LittleEndian.PutUint64(w.n[:], n)
	w.w.Write(w.n[:])
}

func (w *narWriter) pad(n uint64) {
	if r := n % 8; r != 0 {
		var zero [8]byte
		w.w.Write(zero[:8-r])
	}
}

func (w *narWriter) str(s string) {
	w.int(uint64(len(s)))
	io.WriteString(w.w, s)
	w.pad(uint64(len(s)))
}

func (w *narWriter) node(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return err
	}
	w.str("(")
	switch mode := st.Mode(); {
	case mode.IsRegular():
		w.str("type")
		w.str("regular")
		if mode&0o100 != 0 {
			w.str("executable")
			w.str("")
		}
		w.str("contents")
		if err := w.contents(path, st.Size()); err != nil {
			return err
		}
	case mode&os.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		w.str("type")
		w.str("symlink")
		w.str("target")
		w.str(target)
	case mode.IsDir():
		w.str("type")
		w.str("directory")
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		sort.Strings(names)
		for _, name := range names {
			w.str("entry")
			w.str("(")
			w.str("name")
			w.str(name)
			w.str("node")
			if err := w.node(filepath.Join(path, name)); err != nil {
				return err
			}
			w.str(")")
		}
	default:
		return fmt.Errorf("%s: unsupported file type %v in a store path", path, mode.Type())
	}
	w.str(")")
	return nil
}

func (w *narWriter) contents(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w.int(uint64(size))
	n, err := io.CopyBuffer(w.w, io.LimitReader(f, size), w.buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s: changed while hashing (read %d of %d bytes)", path, n, size)
	}
	w.pad(uint64(size))
	return nil
}

// nix32 is Nix's base-32 encoding (its own alphabet and bit order), used in
// store path hashes and GC root names.
func nix32(b []byte) string {
	const chars = "0123456789abcdfghijklmnpqrsvwxyz"
	n := (len(b)*8-1)/5 + 1
	var s strings.Builder
	for i := n - 1; i >= 0; i-- {
		bit := i * 5
		j, k := bit/8, uint(bit%8)
		c := b[j] >> k
		if j+1 < len(b) {
			c |= b[j+1] << (8 - k)
		}
		s.WriteByte(chars[c&0x1f])
	}
	return s.String()
}

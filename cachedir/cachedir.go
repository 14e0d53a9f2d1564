// Package cachedir finds nucleus's cache directory and hands out its
// directories only when they are the caller's own.
//
// Caches hold what later runs trust without checking again (compiled
// seccomp filters, bundles, runsc's flag list), so a cache dir someone else
// can write to lets them choose what a sandbox enforces. There is no shared
// fallback: without $NUCLEUS_CACHE_DIR, /var/cache/nucleus (root) or the
// user's cache dir, nucleus refuses rather than use a predictable path in
// /tmp.
package cachedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrUnsafe marks a cache dir that is not a private directory of the
// caller's.
var ErrUnsafe = errors.New("unsafe cache dir")

// Root is $NUCLEUS_CACHE_DIR, else /var/cache/nucleus for root, else
// nucleus/ in the user's cache dir ($XDG_CACHE_HOME or ~/.cache). It is
// neither created nor checked: Ensure does that.
func Root() (string, error) {
	if d := os.Getenv("NUCLEUS_CACHE_DIR"); d != "" {
		return filepath.Abs(d)
	}
	if os.Geteuid() == 0 {
		return "/var/cache/nucleus", nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache dir: set NUCLEUS_CACHE_DIR (or HOME or XDG_CACHE_HOME): %w", err)
	}
	return filepath.Join(d, "nucleus"), nil
}

// Sub returns name under Root, both made (mode 0700 when new) and checked.
func Sub(name string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	if err := Ensure(root); err != nil {
		return "", err
	}
	dir := filepath.Join(root, name)
	if err := Ensure(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// Ensure creates dir (and missing parents, mode 0700) and checks that it
// is a directory, not a symlink, owned by the effective uid and writable by
// nobody else.
func Ensure(dir string) error {
	// Nothing is made below a dir someone else controls.
	if err := checkAbove(dir, true); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cache dir %s: %w", dir, err)
	}
	return Check(dir)
}

// Check is Ensure without creating anything. The dirs above dir count too:
// whoever can rename an entry of one of them can swap dir for their own.
func Check(dir string) error {
	if err := checkAbove(dir, false); err != nil {
		return err
	}
	return checkDir(dir)
}

// checkAbove checks the dirs above dir (with missingOK, those that exist).
func checkAbove(dir string, missingOK bool) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			if missingOK && errors.Is(err, os.ErrNotExist) && p != "/" {
				continue
			}
			return fmt.Errorf("cache dir %s: %w", dir, err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if ok && sys.Uid != 0 && int(sys.Uid) != os.Geteuid() {
			return fmt.Errorf("cache dir %s: %s above it is owned by uid %d; set NUCLEUS_CACHE_DIR to a private dir: %w", dir, p, sys.Uid, ErrUnsafe)
		}
		if st.Mode().Perm()&0o022 != 0 && st.Mode()&os.ModeSticky == 0 {
			return fmt.Errorf("cache dir %s: %s above it is writable by group or others; set NUCLEUS_CACHE_DIR to a private dir: %w", dir, p, ErrUnsafe)
		}
		if p == "/" || p == "." {
			return nil
		}
	}
}

func checkDir(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("cache dir %s: not a directory (a symlink?): %w", dir, ErrUnsafe)
	}
	euid := os.Geteuid()
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != euid {
		return fmt.Errorf("cache dir %s: owned by uid %d, not %d; remove it or set NUCLEUS_CACHE_DIR to a private dir: %w", dir, sys.Uid, euid, ErrUnsafe)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("cache dir %s: writable by group or others (%v); chmod go-w it or set NUCLEUS_CACHE_DIR to a private dir: %w", dir, st.Mode().Perm(), ErrUnsafe)
	}
	return nil
}

// ErrBusy marks an entry someone is using (TryExclusive).
var ErrBusy = errors.New("in use")

// Use marks the entry guarded by lockPath (a file in a checked cache dir)
// in use until release: a shared flock, which Prune's TryExclusive sees.
// It waits while a prune holds the entry, and locks the file that is
// there afterwards (a prune removes the lock file with the entry).
func Use(lockPath string) (release func(), err error) {
	for {
		fd, err := unix.Open(lockPath, unix.O_RDONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("cache lock %s: %w", lockPath, err)
		}
		if err := unix.Flock(fd, unix.LOCK_SH); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("cache lock %s: %w", lockPath, err)
		}
		if same(fd, lockPath) {
			return func() { unix.Close(fd) }, nil
		}
		unix.Close(fd) // removed while we waited: lock the new one
	}
}

// TryExclusive takes the entry guarded by lockPath for removal, or fails
// with ErrBusy if a Use holds it. A missing lock file is no one's: ok
// with a no-op release.
func TryExclusive(lockPath string) (release func(), err error) {
	fd, err := unix.Open(lockPath, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache lock %s: %w", lockPath, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", lockPath, ErrBusy)
		}
		return nil, fmt.Errorf("cache lock %s: %w", lockPath, err)
	}
	return func() { unix.Close(fd) }, nil
}

// same reports whether fd is still the file at path.
func same(fd int, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Lstat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

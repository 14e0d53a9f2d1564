package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// setup makes a workspace (orig) owned by 1000:1000 and its copy dir; the
// copy is owned by 2000:2000 as a sandbox's would be.
func setup(t *testing.T) (orig, dir string, dropped map[string]string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the copy changes owners")
	}
	orig, dir = t.TempDir(), t.TempDir()
	if err := os.Chown(orig, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	return orig, dir, map[string]string{}
}

// copyIn gives the workspace's entries (but "shadow") to its owner and
// copies it in.
func copyIn(t *testing.T, orig, dir string, dropped map[string]string) *Copy {
	t.Helper()
	// Only what is on orig's own filesystem, and no device node: a
	// chown walk must never reach a mount or a device (the host's
	// /dev/null once lost its owner to one).
	var top unix.Stat_t
	if err := unix.Lstat(orig, &top); err != nil {
		t.Fatal(err)
	}
	filepath.Walk(orig, func(p string, fi os.FileInfo, err error) error {
		if err != nil || filepath.Base(p) == "shadow" {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Dev != top.Dev || !(fi.Mode().IsRegular() || fi.IsDir() || fi.Mode()&os.ModeSymlink != 0) {
			return nil
		}
		return os.Lchown(p, 1000, 1000)
	})
	c, err := In(Dir{Path: orig}, dir, 2000, 2000, func(p, why string) { dropped[p] = why })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func owner(t *testing.T, p string) (uint32, uint32, os.FileMode) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return sys.Uid, sys.Gid, st.Mode()
}

func write(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	orig, dir, dropped := setup(t)
	os.MkdirAll(filepath.Join(orig, "d", "e"), 0o755)
	write(t, filepath.Join(orig, "d", "e", "f"), "f", 0o640)
	write(t, filepath.Join(orig, "gone"), "x", 0o644)
	os.Symlink("d/e/f", filepath.Join(orig, "l"))
	c := copyIn(t, orig, dir, dropped)
	if uid, gid, _ := owner(t, filepath.Join(dir, "d", "e", "f")); uid != 2000 || gid != 2000 {
		t.Errorf("copy owned by %d:%d, want 2000:2000", uid, gid)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "l")); target != "d/e/f" {
		t.Errorf("link copied in as %q", target)
	}
	os.Remove(filepath.Join(dir, "gone"))
	write(t, filepath.Join(dir, "d", "new"), "new", 0o600)
	os.Symlink("../gone", filepath.Join(dir, "d", "rel"))
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(orig, "gone")); err == nil {
		t.Errorf("deleted file still in the workspace")
	}
	if data, _ := os.ReadFile(filepath.Join(orig, "d", "new")); string(data) != "new" {
		t.Errorf("new file: %q", data)
	}
	if target, _ := os.Readlink(filepath.Join(orig, "d", "rel")); target != "../gone" {
		t.Errorf("relative link inside: %q", target)
	}
	for _, p := range []string{"d", "d/new", "d/rel", "d/e/f", "l"} {
		if uid, gid, _ := owner(t, filepath.Join(orig, p)); uid != 1000 || gid != 1000 {
			t.Errorf("%s owned by %d:%d, want 1000:1000", p, uid, gid)
		}
	}
	if len(dropped) != 0 {
		t.Errorf("dropped: %v", dropped)
	}
}

func TestLinksLeavingAreDropped(t *testing.T) {
	orig, dir, dropped := setup(t)
	outside := filepath.Join(t.TempDir(), "secret")
	write(t, outside, "secret", 0o600)
	write(t, filepath.Join(orig, "notes"), "notes", 0o644)
	os.Mkdir(filepath.Join(orig, "sub"), 0o755)
	c := copyIn(t, orig, dir, dropped)
	os.Remove(filepath.Join(dir, "notes"))
	os.Symlink(outside, filepath.Join(dir, "notes"))
	os.Symlink("../../x", filepath.Join(dir, "sub", "up"))
	// Lexically inside, but dot is a link to the root: dot/.. is its parent.
	os.Symlink(".", filepath.Join(dir, "dot"))
	os.Symlink("dot/..", filepath.Join(dir, "viadot"))
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	for p, why := range map[string]string{"notes": "absolute", "sub/up": "leaves", "viadot": "leaves"} {
		if !strings.Contains(dropped[p], why) {
			t.Errorf("%s: dropped %q, want %q", p, dropped[p], why)
		}
		if st, err := os.Lstat(filepath.Join(orig, p)); err == nil && st.Mode()&os.ModeSymlink != 0 {
			t.Errorf("%s: escaping link reached the workspace", p)
		}
	}
	// The dropped link leaves the workspace's own entry alone.
	if data, _ := os.ReadFile(filepath.Join(orig, "notes")); string(data) != "notes" {
		t.Errorf("notes: %q", data)
	}
	if target, _ := os.Readlink(filepath.Join(orig, "dot")); target != "." {
		t.Errorf("dot: %q", target)
	}
}

// A link (or hard link) at a name in the workspace is replaced, never
// written through; a directory in the copy where the workspace has a link
// to a directory outside does not land in that directory.
func TestWorkspaceLinksAreReplaced(t *testing.T) {
	orig, dir, dropped := setup(t)
	outDir := t.TempDir()
	secret := filepath.Join(outDir, "secret")
	write(t, secret, "secret", 0o600)
	hard := filepath.Join(t.TempDir(), "hard")
	write(t, hard, "hard", 0o644)
	c := copyIn(t, orig, dir, dropped)
	// The host user plants links after the copy was made.
	os.Symlink(secret, filepath.Join(orig, "f"))
	os.Symlink(outDir, filepath.Join(orig, "d"))
	os.Symlink(outDir, filepath.Join(orig, "gone"))
	if err := os.Link(hard, filepath.Join(orig, "h")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "f"), "pwned", 0o644)
	write(t, filepath.Join(dir, "h"), "pwned", 0o644)
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	write(t, filepath.Join(dir, "d", "secret"), "pwned", 0o644)
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{secret, hard} {
		data, _ := os.ReadFile(p)
		if string(data) == "pwned" {
			t.Errorf("write-back wrote through a link to %s", p)
		}
	}
	if uid, _, mode := owner(t, secret); uid != 0 || mode != 0o600 {
		t.Errorf("outside file changed: %d %v", uid, mode)
	}
	if _, _, mode := owner(t, filepath.Join(orig, "d")); !mode.IsDir() {
		t.Errorf("d is %v, want a directory", mode)
	}
	if _, err := os.Stat(outDir); err != nil {
		t.Errorf("removing the link 'gone' touched its target: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(orig, "gone")); err == nil {
		t.Errorf("gone not removed")
	}
}

func TestSetIDAndXattrsStripped(t *testing.T) {
	orig, dir, dropped := setup(t)
	c := copyIn(t, orig, dir, dropped)
	p := filepath.Join(dir, "sh")
	write(t, p, "#!", 0o755)
	os.Chmod(p, 0o755|os.ModeSetuid|os.ModeSetgid)
	if err := unix.Lsetxattr(p, "user.x", []byte("1"), 0); err != nil {
		t.Logf("no user xattrs here: %v", err)
	}
	os.Mkdir(filepath.Join(dir, "sg"), 0o755)
	os.Chmod(filepath.Join(dir, "sg"), 0o755|os.ModeSetgid)
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	uid, gid, mode := owner(t, filepath.Join(orig, "sh"))
	if mode != 0o755 || uid != 1000 || gid != 1000 {
		t.Errorf("sh came back %v %d:%d, want -rwxr-xr-x 1000:1000", mode, uid, gid)
	}
	if _, _, mode := owner(t, filepath.Join(orig, "sg")); mode&os.ModeSetgid != 0 {
		t.Errorf("sg came back %v", mode)
	}
	if n, err := unix.Lgetxattr(filepath.Join(orig, "sh"), "user.x", nil); err == nil {
		t.Errorf("xattr copied (%d bytes)", n)
	}
}

func TestSpecialFilesSkipped(t *testing.T) {
	orig, dir, dropped := setup(t)
	if err := unix.Mkfifo(filepath.Join(orig, "hostfifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := copyIn(t, orig, dir, dropped)
	if _, err := os.Lstat(filepath.Join(dir, "hostfifo")); err == nil {
		t.Errorf("fifo copied in")
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"fifo", "null"} {
		if _, err := os.Lstat(filepath.Join(orig, p)); err == nil {
			t.Errorf("%s copied back", p)
		}
		if dropped[p] == "" {
			t.Errorf("%s: no drop reported", p)
		}
	}
	// Left out going in is not a deletion coming back.
	if _, err := os.Lstat(filepath.Join(orig, "hostfifo")); err != nil {
		t.Errorf("host fifo deleted: %v", err)
	}
}

// A file the workspace's owner can't read (a root-only file hard-linked
// in) does not reach the sandbox, and stays.
func TestUnreadableStaysOut(t *testing.T) {
	orig, dir, dropped := setup(t)
	write(t, filepath.Join(orig, "shadow"), "root-only", 0o600)
	c := copyIn(t, orig, dir, dropped)
	if _, err := os.Lstat(filepath.Join(dir, "shadow")); err == nil {
		t.Errorf("root-only file copied into the sandbox")
	}
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(orig, "shadow")); string(data) != "root-only" {
		t.Errorf("shadow: %q", data)
	}
}

// A directory of the workspace swapped for a link between the walk's steps
// fails the step rather than descending through the link.
func TestDirSwappedForLink(t *testing.T) {
	_, _, _ = setup(t)
	root := t.TempDir()
	outDir := t.TempDir()
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	rfd, err := openDir(unix.AT_FDCWD, root, false)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	os.Remove(filepath.Join(root, "d"))
	os.Symlink(outDir, filepath.Join(root, "d"))
	if fd, err := openDir(rfd, "d", true); err == nil {
		unix.Close(fd)
		t.Fatalf("opened a directory through a link")
	}
	if err := removeAt(rfd, "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(outDir); err != nil {
		t.Errorf("link target removed: %v", err)
	}
}

// A run killed during write-back leaves only a temporary name, which the
// next write-back removes.
func TestTempLeftoverRemoved(t *testing.T) {
	orig, dir, dropped := setup(t)
	write(t, filepath.Join(orig, tempPrefix+"0123"), "half", 0o600)
	c := copyIn(t, orig, dir, dropped)
	os.Remove(filepath.Join(dir, tempPrefix+"0123"))
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(orig, tempPrefix+"0123")); err == nil {
		t.Errorf("temporary file left")
	}
}

// The host workspace swapped, during the run, for a link to another
// directory (one root owns): Back writes nothing there, nor does In copy
// from a directory other than the one checked.
func TestWorkspaceSwappedForALink(t *testing.T) {
	base := t.TempDir()
	orig := filepath.Join(base, "ws")
	os.Mkdir(orig, 0o755)
	os.WriteFile(filepath.Join(orig, "f"), []byte("mine"), 0o644)
	victim := filepath.Join(base, "victim")
	os.Mkdir(victim, 0o755)
	os.WriteFile(filepath.Join(victim, "keep"), []byte("root's"), 0o600)
	var st unix.Stat_t
	if err := unix.Stat(orig, &st); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, err := In(Dir{Path: orig, Dev: st.Dev, Ino: st.Ino}, dir, 2000, 2000, func(string, string) {})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "f"), []byte("sandbox"), 0o644)
	os.Rename(orig, orig+".away")
	os.Symlink(victim, orig)
	if err := c.Back(); !errors.Is(err, ErrReplaced) {
		t.Fatalf("write-back through a swapped workspace: %v", err)
	}
	if _, err := os.Stat(filepath.Join(victim, "f")); err == nil {
		t.Error("the write-back wrote into the directory swapped in")
	}
	if data, _ := os.ReadFile(filepath.Join(victim, "keep")); string(data) != "root's" {
		t.Error("the write-back changed the directory swapped in")
	}
	if _, err := In(Dir{Path: orig, Dev: st.Dev, Ino: st.Ino}, t.TempDir(), 2000, 2000, func(string, string) {}); !errors.Is(err, ErrReplaced) {
		t.Errorf("copy-in from a swapped workspace: %v", err)
	}
}

// An edit that keeps the size and puts the mtime back is still an edit:
// the write-back goes by what the sandbox touched (the copy's ctime), not
// by size and mtime; and a file it never touched is left as the host has it.
func TestWriteBackSeesEditsThatRestoreMtime(t *testing.T) {
	orig, dir, dropped := setup(t)
	write(t, filepath.Join(orig, "a"), "aaaa", 0o644)
	write(t, filepath.Join(orig, "b"), "bbbb", 0o644)
	c := copyIn(t, orig, dir, dropped)
	st, err := os.Stat(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a"), "AAAA", 0o644)
	os.Chtimes(filepath.Join(dir, "a"), st.ModTime(), st.ModTime())
	// The host user edits b during the run; the sandbox never touched it.
	write(t, filepath.Join(orig, "b"), "host edit", 0o644)
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(orig, "a")); string(data) != "AAAA" {
		t.Errorf("an edit that restored the mtime was lost: a = %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(orig, "b")); string(data) != "host edit" {
		t.Errorf("an untouched file overwrote the host's edit: b = %q", data)
	}
}

// A directory the workspace already had keeps its owner after the
// write-back; one the sandbox made belongs to the workspace's owner.
func TestWriteBackKeepsExistingDirectoryOwners(t *testing.T) {
	orig, dir, dropped := setup(t)
	os.Mkdir(filepath.Join(orig, "theirs"), 0o755)
	c := copyIn(t, orig, dir, dropped)
	os.Chown(filepath.Join(orig, "theirs"), 3000, 3000)
	os.Mkdir(filepath.Join(dir, "new"), 0o755)
	write(t, filepath.Join(dir, "theirs", "f"), "x", 0o644)
	if err := c.Back(); err != nil {
		t.Fatal(err)
	}
	if uid, gid, _ := owner(t, filepath.Join(orig, "theirs")); uid != 3000 || gid != 3000 {
		t.Errorf("an existing directory changed owner to %d:%d", uid, gid)
	}
	if uid, _, _ := owner(t, filepath.Join(orig, "new")); uid != 1000 {
		t.Errorf("a directory the sandbox made is owned by %d, want the workspace owner 1000", uid)
	}
}

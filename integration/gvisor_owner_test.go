package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGvisorStdioOwnersKept: runsc gives the stdio it is handed to the
// sandbox's user (nobody); nucleus passes its own stdio through, so a run
// -d or an exec with stdin from /dev/null gave the host's /dev/null to
// nobody:nogroup (seen during parallel test runs), and a log file to
// nobody too. After run -d and exec, a null device and a user's log file
// used as the container's stdio keep their owners. (A null device of the
// test's own stands in for the host's /dev/null.)
func TestGvisorStdioOwnersKept(t *testing.T) {
	r := gvisorRunner(t)
	b := gvisorBundle(t, "sleep", "1000")
	dir := t.TempDir()
	null, logPath := filepath.Join(dir, "null"), filepath.Join(dir, "log")
	if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	os.Chmod(null, 0o666)
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(logPath, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	owners := func(when string) {
		t.Helper()
		for p, want := range map[string]uint32{null: 0, logPath: 1000} {
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Uid != want || st.Gid != want {
				t.Errorf("after %s: %s owned by %d:%d, want %d:%d", when, p, st.Uid, st.Gid, want, want)
			}
		}
	}
	run := func(args ...string) {
		t.Helper()
		in, err := os.OpenFile(null, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		cmd := r.Cmd(args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, out
		if err := cmd.Run(); err != nil {
			data, _ := os.ReadFile(logPath)
			t.Fatalf("nucleus %v: %v: %s", args, err, data)
		}
	}
	id := f2ID(t, r, "gvown")
	run("run", "-d", "--bundle", b.Dir, id)
	owners("run -d")
	run("exec", id, "sh", "-c", "echo from-exec")
	owners("exec")
	if data, _ := os.ReadFile(logPath); !strings.Contains(string(data), "from-exec") {
		t.Errorf("exec's output not in the log: %q", data)
	}
	r.OK("delete", "--force", id)
	assertNoGvisorLeftovers(t, r, id, b.Dir)
}

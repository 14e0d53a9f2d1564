package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Attacks on the workspace from inside `nucleus sandbox`: what the workload
// leaves in /workspace must never reach beyond the host workspace, nor come
// back as something more privileged than its owner.

// userWorkspace is a fresh workspace dir owned by an ordinary host user
// (1000:1000), reachable by that user.
func userWorkspace(t *testing.T) string {
	t.Helper()
	ws := t.TempDir()
	os.Chmod(filepath.Dir(ws), 0o755)
	if err := os.Chown(ws, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	return ws
}

// hostSecret is a root-only file outside any workspace.
func hostSecret(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("host-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func assertSecretIntact(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil || string(data) != "host-secret" {
		t.Errorf("host file %s outside the workspace was changed: %q %v", p, data, err)
	}
	st, err := os.Lstat(p)
	if err == nil {
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode() != 0o600 || sys.Uid != 0 || sys.Gid != 0 {
			t.Errorf("host file %s: mode %v owner %d:%d, want -rw------- 0:0", p, st.Mode(), sys.Uid, sys.Gid)
		}
	}
}

// auditEvents returns the events of one name in an audit log.
func auditEvents(t *testing.T, log, name string) []map[string]any {
	t.Helper()
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil && e["event"] == name {
			out = append(out, e)
		}
	}
	return out
}

// TestWorkspaceCopyBackSymlinkEscape: run 1 replaces a workspace file with
// a link to a root-only host file, run 2 writes a regular file there; the
// write-back must replace the link, not write through it. Also with a link
// a host user left in the workspace, and with relative links leaving it.
func TestWorkspaceCopyBackSymlinkEscape(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	secret := hostSecret(t)
	ws := userWorkspace(t)
	os.WriteFile(filepath.Join(ws, "notes.txt"), []byte("notes"), 0o644)
	os.WriteFile(filepath.Join(ws, "keep.txt"), []byte("keep"), 0o644)
	os.Mkdir(filepath.Join(ws, "sub"), 0o755)
	chownTree(t, ws, 1000, 1000)
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	flags := []string{"--audit-log", log, "--workspace", ws + ":copy-in-out"}

	res := r.sandbox(b, "ws-link-1", flags, "sh", "-c",
		"rm notes.txt && ln -s "+secret+" notes.txt && ln -s ../../../../../../.."+secret+" sub/up && ln -s keep.txt inlink && echo ok")
	expectLine(t, res, "ok")
	res = r.sandbox(b, "ws-link-2", flags, "sh", "-c", "rm -f notes.txt sub/up && echo pwned > notes.txt && echo pwned > sub/up && echo ok")
	expectLine(t, res, "ok")
	assertSecretIntact(t, secret)
	if data, err := os.ReadFile(filepath.Join(ws, "notes.txt")); err != nil || string(data) != "pwned\n" {
		t.Errorf("notes.txt written in run 2 did not come back as a file: %q %v", data, err)
	}
	if target, err := os.Readlink(filepath.Join(ws, "inlink")); err != nil || target != "keep.txt" {
		t.Errorf("a link inside the workspace did not come back as that link: %q %v", target, err)
	}
	dropped := auditEvents(t, log, "workspace_entry_dropped")
	var paths []string
	for _, e := range dropped {
		p, _ := e["path"].(string)
		paths = append(paths, p)
	}
	for _, want := range []string{"notes.txt", "sub/up"} {
		if !strings.Contains(strings.Join(paths, " "), want) {
			t.Errorf("no workspace_entry_dropped event for %s: %v", want, dropped)
		}
	}
	for _, p := range []string{ws, filepath.Join(ws, "notes.txt"), filepath.Join(ws, "sub")} {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 1000 || sys.Gid != 1000 {
			t.Errorf("%s owned by %d:%d after write-back, want the workspace owner 1000:1000", p, sys.Uid, sys.Gid)
		}
	}

	// A link that already sits in the workspace on the host.
	secret2 := hostSecret(t)
	ws2 := userWorkspace(t)
	if err := os.Symlink(secret2, filepath.Join(ws2, "notes.txt")); err != nil {
		t.Fatal(err)
	}
	chownTree(t, ws2, 1000, 1000)
	res = r.sandbox(b, "ws-link-3", []string{"--workspace", ws2 + ":copy-in-out"}, "sh", "-c", "rm -f notes.txt && echo pwned > notes.txt && echo ok")
	expectLine(t, res, "ok")
	assertSecretIntact(t, secret2)
	if st, err := os.Lstat(filepath.Join(ws2, "notes.txt")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("notes.txt on the host is not the regular file the sandbox wrote: %v %v", st, err)
	}
}

// TestWorkspaceCopyBackHardlink: a host file hard-linked into the
// workspace is replaced by the write-back, never written through.
func TestWorkspaceCopyBackHardlink(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	ws := t.TempDir()
	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, []byte("host-secret"), 0o644)
	if err := os.Link(other, filepath.Join(ws, "h")); err != nil {
		t.Fatal(err)
	}
	res := r.sandbox(b, "ws-hardlink", []string{"--workspace", ws + ":copy-in-out"}, "sh", "-c", "echo pwned > h && echo ok")
	expectLine(t, res, "ok")
	if data, _ := os.ReadFile(other); string(data) != "host-secret" {
		t.Errorf("write-back wrote through a hard link: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "h")); string(data) != "pwned\n" {
		t.Errorf("h did not come back: %q", data)
	}
}

// TestWorkspaceSetuidRoot: the workload makes a setuid copy of busybox in
// the workspace. A root-owned bind-rw workspace is refused; copy-in-out
// brings the file back without the bit, owned by the workspace's owner,
// and while the sandbox runs its private copy is out of host users' reach.
func TestWorkspaceSetuidRoot(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	mkSuid := "cp /bin/busybox /workspace/sh && chmod 4755 /workspace/sh && chmod g+s /workspace/sh; ls -ln /workspace/sh"

	rootWS := t.TempDir()
	os.Chmod(rootWS, 0o755)
	res := r.sandbox(b, "ws-suid-rw", []string{"--workspace", rootWS}, "sh", "-c", mkSuid)
	if res.Code == 0 {
		if st, err := os.Stat(filepath.Join(rootWS, "sh")); err == nil {
			sys := st.Sys().(*syscall.Stat_t)
			t.Errorf("root-owned bind-rw workspace was accepted; the sandbox left %v %d:%d on the host", st.Mode(), sys.Uid, sys.Gid)
		} else {
			t.Errorf("root-owned bind-rw workspace was accepted")
		}
	} else {
		msg := strings.TrimSpace(res.Stderr)
		for _, want := range []string{rootWS, "owned by root", "copy-in-out", "bind-ro"} {
			if !strings.Contains(msg, want) {
				t.Errorf("refusal %q lacks %q", msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("refusal is not one line: %q", msg)
		}
	}
	// Read-only stays allowed.
	res = r.sandbox(b, "ws-suid-ro", []string{"--workspace", rootWS + ":bind-ro"}, "sh", "-c", "ls / >/dev/null && echo ro-ok")
	expectLine(t, res, "ro-ok")

	for _, c := range []struct {
		name     string
		ws       string
		uid, gid uint32
	}{{"root", rootWS, 0, 0}, {"user", userWorkspace(t), 1000, 1000}} {
		id := "ws-suid-copy-" + c.name
		cmd := r.Cmd("sandbox", "--bundle", b.Dir, "--id", id, "--workspace", c.ws+":copy-in-out", "--",
			"sh", "-c", mkSuid+" && touch /workspace/marker-"+id+" && echo ready && sleep 3")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		ready := false
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready = true
				break
			}
		}
		if ready {
			checkPrivateCopy(t, r, id)
		}
		go io.Copy(io.Discard, stdout)
		if err := cmd.Wait(); err != nil || !ready {
			t.Fatalf("%s: copy-in-out sandbox: ready %v, %v", c.name, ready, err)
		}
		assertNoLeftovers(t, r.Root, id, b.Dir)
		st, err := os.Stat(filepath.Join(c.ws, "sh"))
		if err != nil {
			t.Fatalf("%s: sh did not come back: %v", c.name, err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || sys.Uid != c.uid || sys.Gid != c.gid {
			t.Errorf("%s: copy-in-out brought back %v %d:%d, want no set-id bits, owner %d:%d", c.name, st.Mode(), sys.Uid, sys.Gid, c.uid, c.gid)
		}
	}
}

// checkPrivateCopy finds the running sandbox's private copy (by its
// marker) and checks an ordinary host user can neither run its set-id file
// nor find one owned by root there.
func checkPrivateCopy(t *testing.T, r *Runner, id string) {
	t.Helper()
	var dir string
	for _, pat := range []string{filepath.Join(r.Root, "*"), filepath.Join(r.Root, "*", "*"), filepath.Join(os.TempDir(), "nucleus-workspace-*")} {
		cands, _ := filepath.Glob(pat)
		for _, c := range cands {
			if _, err := os.Lstat(filepath.Join(c, "marker-"+id)); err == nil {
				dir = c
			}
		}
	}
	if dir == "" {
		t.Errorf("%s: private copy not found", id)
		return
	}
	sh := filepath.Join(dir, "sh")
	st, err := os.Lstat(sh)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 && (sys.Uid == 0 || sys.Gid == 0) {
		t.Errorf("%s: private copy %s holds a set-id file owned by %d:%d (%v)", id, sh, sys.Uid, sys.Gid, st.Mode())
	}
	setpriv := requireCmd(t, "setpriv")
	out, err := exec.Command(setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", sh, "id", "-u").CombinedOutput()
	if err == nil {
		t.Errorf("%s: host user 65534 ran the sandbox's set-id file %s from the private copy: id -u = %s", id, sh, strings.TrimSpace(string(out)))
	}
}

// TestWorkspaceNestedDestNoExec: a workspace mounted below a top-level
// directory that Landlock lets the sandbox execute from (/opt) must not
// become executable without --workspace-exec.
func TestWorkspaceNestedDestNoExec(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	os.MkdirAll(filepath.Join(b.Rootfs, "opt", "ws"), 0o755)
	ws := userWorkspace(t)
	run := "cp /bin/busybox /opt/ws/bb && /opt/ws/bb echo EXEC-OK; probe copy-exec /opt/ws/p"
	res := r.sandbox(b, "ws-nested", []string{"--workspace", ws + ":/opt/ws"}, "sh", "-c", run)
	if strings.Contains(res.Stdout, "EXEC-OK") || strings.Contains(res.Stdout, "ALLOWED") {
		t.Errorf("a workspace at /opt/ws without --workspace-exec is executable: %q", res.Stdout)
	}
	// The noexec mount alone stops it today; Landlock must not grant exec
	// there either, so the destination is refused up front.
	if res.Code == 0 || !strings.Contains(res.Stderr, "--workspace: /opt/ws") || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
		t.Errorf("nested workspace destination without --workspace-exec: exit %d, stderr %q; want a one-line refusal", res.Code, res.Stderr)
	}
	// Below a dir the sandbox can't execute from, it is fine.
	os.MkdirAll(filepath.Join(b.Rootfs, "run"), 0o755)
	res = r.sandbox(b, "ws-nested-run", []string{"--workspace", ws + ":/run/ws"}, "probe", "copy-exec", "/run/ws/p")
	expectLine(t, res, "DENIED EACCES")
	// With --workspace-exec it is, as at /workspace.
	res = r.sandbox(b, "ws-nested-x", []string{"--workspace", ws + ":/opt/ws", "--workspace-exec"}, "probe", "copy-exec", "/opt/ws/p2")
	expectLine(t, res, "ALLOWED")
}

// TestCacheDirOwnerChecked: a cache dir another user owns or can write to
// (where they could plant a compiled seccomp filter or a bundle) is
// refused, never used.
func TestCacheDirOwnerChecked(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	base := t.TempDir()
	os.Chmod(base, 0o755)
	other := filepath.Join(base, "other")
	os.Mkdir(other, 0o755)
	os.Chown(other, 1000, 1000)
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	for i, dir := range []string{other, open, filepath.Join(open, "c")} {
		id := "ws-cache-" + string(rune('a'+i))
		cmd := r.Cmd("sandbox", "--bundle", b.Dir, "--id", id, "--", "true")
		cmd.Env = append(os.Environ(), "NUCLEUS_CACHE_DIR="+dir)
		out, err := cmd.CombinedOutput()
		msg := strings.TrimSpace(string(out))
		if err == nil || !strings.Contains(msg, "cache dir "+dir) || strings.Contains(msg, "\n") {
			t.Errorf("NUCLEUS_CACHE_DIR=%s (not private): err %v, output %q; want a one-line refusal naming it", dir, err, msg)
		}
		if entries, _ := os.ReadDir(open); len(entries) > 0 {
			t.Errorf("NUCLEUS_CACHE_DIR=%s: nucleus made %s/%s", dir, open, entries[0].Name())
		}
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}

	// The flake sandbox's bundle dir: old nucleus put it beside the cache
	// dir, here in a directory anyone can write to.
	requireCmd(t, "nix")
	if out, err := exec.Command("nix", "flake", "--help").CombinedOutput(); err != nil {
		need(t, false, "nix flakes not enabled: "+firstLine(out))
	}
	flake := nixFlakeCopy(t)
	cmd := r.Cmd("sandbox", "--flake", "path:"+flake+"#agent-example", "--id", "ws-cache-flake", "--", "true")
	cmd.Env = append(os.Environ(), "NUCLEUS_CACHE_DIR="+filepath.Join(open, "bundle"))
	out, err := cmd.CombinedOutput()
	if entries, _ := os.ReadDir(open); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("nucleus used the world-writable %s for its caches: %v (%v: %s)", open, names, err, out)
	}
	if err == nil {
		t.Errorf("sandbox --flake with a cache below a world-writable dir ran")
	}
	assertNoLeftovers(t, r.Root, "ws-cache-flake", "")
}

// TestWorkspaceWhiteoutRefused: renameat2(RENAME_WHITEOUT), which any user
// may call since Linux 5.8, leaves a 0:0 character device where the file
// was: through a bind workspace, a device node in the user's directory
// (mknod is refused). The sandbox's seccomp filter refuses the flag; other
// renameat2 flags still work.
func TestWorkspaceWhiteoutRefused(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	ws := userWorkspace(t)
	res := r.sandbox(b, "ws-whiteout", []string{"--workspace", ws + ":bind-rw"}, "probe", "whiteout", "/workspace/w")
	if !strings.Contains(res.Stdout, "whiteout: DENIED EPERM") || !strings.Contains(res.Stdout, "rename-noreplace: ALLOWED") {
		t.Errorf("renameat2 in a bind workspace: exit %d, %q %q", res.Code, res.Stdout, res.Stderr)
	}
	entries, _ := os.ReadDir(ws)
	for _, e := range entries {
		if e.Type()&os.ModeDevice != 0 {
			t.Errorf("a device node %s was left in the user's directory", e.Name())
		}
	}
}

// TestWorkspaceRootOwnedReadOnly: a read-only bind of a directory root
// owns (for one, a symlink to /etc inside a user's project, which the
// workspace path follows) must not hand root's 0600 files to the
// workload, as an idmap making root the workload's own did; what any host
// user may read stays readable.
func TestWorkspaceRootOwnedReadOnly(t *testing.T) {
	r := newRunner(t)
	b := probeBundle(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("root only\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "public"), []byte("anyone\n"), 0o644)
	proj := userWorkspace(t)
	os.Symlink(dir, filepath.Join(proj, "link"))
	os.Lchown(filepath.Join(proj, "link"), 1000, 1000)
	read := "cat /workspace/public; cat /workspace/secret && echo LEAKED; stat -c '%u' /workspace/secret"
	for _, ws := range []string{dir, filepath.Join(proj, "link")} {
		res := r.sandbox(b, "ws-rootro", []string{"--workspace", ws + ":bind-ro"}, "sh", "-c", read)
		if strings.Contains(res.Stdout, "LEAKED") || strings.Contains(res.Stdout, "root only") || !strings.HasPrefix(res.Stdout, "anyone\n") {
			t.Errorf("bind-ro of %s (root's): stdout %q stderr %q", ws, res.Stdout, res.Stderr)
		}
	}
	// The same through a warm pool's bind.
	name := "ws-rootro-pool"
	r.OK("pool", "create", name, "--bundle", b.Dir, "--size", "1")
	defer r.Run(nil, "pool", "rm", name)
	r.waitPoolReady(name, 1)
	res := r.Run(nil, "sandbox", "--pool", name, "--workspace", dir+":bind-ro", "--", "sh", "-c", read)
	if strings.Contains(res.Stdout, "LEAKED") || strings.Contains(res.Stdout, "root only") || !strings.HasPrefix(res.Stdout, "anyone\n") {
		t.Errorf("pooled bind-ro of a root-owned directory: stdout %q stderr %q", res.Stdout, res.Stderr)
	}
}

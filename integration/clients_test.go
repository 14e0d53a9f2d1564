package integration

// Helpers shared by the client tests (podman_test.go, containerd_test.go):
// the table of runtimes the clients drive (nucleus, and Debian's runc as the
// reference), a command runner with a time limit, busybox image tarballs
// built on the fly, and a leftover check that also looks where the clients
// put things.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nucleus-run/nucleus/spec"
)

// clientRuntime is one OCI runtime the clients are pointed at. Bin is a
// wrapper named after the runtime (podman picks JSON logging by the file
// name) that logs every invocation to CallLog, then execs Real.
type clientRuntime struct {
	Name    string
	Real    string
	Bin     string
	CallLog string
}

// clientRuntimes returns nucleus and, as the reference, Debian's runc.
// Every client test runs once per runtime: nucleus must pass whatever runc
// passes.
func clientRuntimes(t *testing.T) []clientRuntime {
	t.Helper()
	requireRoot(t)
	nuc := nucleusBin(t)
	runc := requireCmd(t, "runc")
	return []clientRuntime{{Name: "nucleus", Real: nuc}, {Name: "runc", Real: runc}}
}

// forEachRuntime runs f as a subtest per runtime, with the wrapper set up.
func forEachRuntime(t *testing.T, f func(t *testing.T, rt clientRuntime)) {
	for _, rt := range clientRuntimes(t) {
		t.Run(rt.Name, func(t *testing.T) {
			f(t, rt.wrapped(t, t.TempDir()))
		})
	}
}

// wrapped is rt with its logging wrapper written in dir.
func (rt clientRuntime) wrapped(t testing.TB, dir string) clientRuntime {
	t.Helper()
	rt.Bin = filepath.Join(dir, rt.Name)
	rt.CallLog = filepath.Join(dir, rt.Name+".calls")
	// A client that passes no --root (podman, and the cleanup its
	// containers' exit runs) gets a private one: the runtime's default
	// (/run/nucleus, /run/runc) would be made on the host and left there.
	// A user namespace's root must reach the staged rootfs dirs under it.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o711)
	root := filepath.Join(dir, rt.Name+"-root")
	script := fmt.Sprintf("#!/bin/sh\ncase \" $* \" in *\" --root \"*|*\" --root=\"*) ;; *) set -- --root %s \"$@\" ;; esac\necho \"$*\" >> %s\nexec %s \"$@\"\n", root, rt.CallLog, rt.Real)
	if err := os.WriteFile(rt.Bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return rt
}

// calls returns the runtime invocations logged so far.
func (rt clientRuntime) calls() []string {
	data, _ := os.ReadFile(rt.CallLog)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// assertCalled fails unless some logged invocation contains every one of
// the words, in order.
func (rt clientRuntime) assertCalled(t testing.TB, words ...string) {
	t.Helper()
	for _, line := range rt.calls() {
		rest, ok := line, true
		for _, w := range words {
			i := strings.Index(rest, w)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(w):]
		}
		if ok {
			return
		}
	}
	t.Errorf("%s was never called with %q; calls:\n%s", rt.Name, words, strings.Join(rt.calls(), "\n"))
}

// cmdResult is one finished client command.
type cmdResult struct {
	Stdout, Stderr string
	Code           int
}

// runCmd runs a command with stdin in (may be nil), env added to ours, and
// a time limit; a command still running at the limit fails the test.
func runCmd(t testing.TB, limit time.Duration, env []string, in []byte, name string, args ...string) cmdResult {
	t.Helper()
	return runCmdFiles(t, limit, env, in, nil, name, args...)
}

// runCmdFiles is runCmd passing extra open files as fd 3, 4, ...
func runCmdFiles(t testing.TB, limit time.Duration, env []string, in []byte, extra []*os.File, name string, args ...string) cmdResult {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = extra
	// Clients may drop files in their working directory (conmon writes an
	// "oom" file there when a container hits its memory limit): keep them
	// out of the source tree.
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if in != nil {
		cmd.Stdin = bytes.NewReader(in)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s: still running after %s\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), limit, stdout.String(), stderr.String())
	}
	return cmdResult{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
}

// busyboxRootfs returns a busybox rootfs directory (from newBundle).
func busyboxRootfs(t testing.TB) string {
	t.Helper()
	return newBundle(t).Rootfs
}

// tarDir writes dir as an uncompressed tar (root-owned entries, relative
// names, symlinks kept).
func tarDir(t testing.TB, dir string, w io.Writer) {
	t.Helper()
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatalf("tar %s: %v", dir, err)
	}
}

// busyboxTarball writes a plain rootfs tarball (for `podman import`).
func busyboxTarball(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "busybox-rootfs.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tarDir(t, busyboxRootfs(t), f)
	return out
}

// busyboxOCIArchive writes an OCI image layout tarball holding one image,
// ref, with a single gzip busybox layer, for `ctr image import`.
func busyboxOCIArchive(t testing.TB, ref string) string {
	t.Helper()
	return ociArchive(t, busyboxRootfs(t), []string{"/bin/sh"}, ref)
}

// ociArchive writes an OCI image layout tarball holding one image, ref,
// whose single gzip layer is rootfs and whose default command is cmd.
func ociArchive(t testing.TB, rootfs string, cmd []string, ref string) string {
	t.Helper()
	var layerTar bytes.Buffer
	tarDir(t, rootfs, &layerTar)
	var layerGz bytes.Buffer
	gz := gzip.NewWriter(&layerGz)
	gz.Write(layerTar.Bytes())
	gz.Close()
	digest := func(b []byte) string {
		s := sha256.Sum256(b)
		return "sha256:" + hex.EncodeToString(s[:])
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	config := mustJSON(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Cmd": cmd, "Env": []string{"PATH=/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digest(layerTar.Bytes())}},
	})
	manifest := mustJSON(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(layerGz.Bytes()), "size": layerGz.Len(),
		}},
	})
	index := mustJSON(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest), "size": len(manifest),
			"platform":    map[string]string{"architecture": "amd64", "os": "linux"},
			"annotations": map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": "latest"},
		}},
	})
	out := filepath.Join(t.TempDir(), "image-oci.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", index)
	for _, b := range [][]byte{config, manifest, layerGz.Bytes()} {
		add("blobs/sha256/"+strings.TrimPrefix(digest(b), "sha256:"), b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// assertNoClientLeftovers checks assertNoLeftovers for every id in the
// runtime's state root, and, beyond it, that no cgroup anywhere in the v1
// hierarchies or cgroup2 (the clients nest them: libpod_parent/libpod-ID,
// NS/ID) and no process's command line mentions any of the ids.
func assertNoClientLeftovers(t testing.TB, stateRoot string, ids []string, dirs ...string) {
	t.Helper()
	for _, id := range ids {
		if id == "" {
			continue
		}
		assertNoLeftovers(t, stateRoot, id, "")
		for _, d := range dirs {
			assertNoLeftovers(t, stateRoot, id, d)
		}
	}
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		roots = []string{"/sys/fs/cgroup"}
	}
	for _, root := range roots {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.Count(strings.TrimPrefix(path, root), "/") > 4 {
				return filepath.SkipDir
			}
			for _, id := range ids {
				if id != "" && strings.Contains(d.Name(), id) {
					t.Errorf("leftover cgroup %s", path)
					return filepath.SkipDir
				}
			}
			return nil
		})
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	self := fmt.Sprintf("/proc/%d/cmdline", os.Getpid())
	for _, p := range procs {
		if p == self {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(data), "\x00", " ")
		for _, id := range ids {
			if id != "" && strings.Contains(cmdline, id) {
				t.Errorf("leftover process %s: %s", filepath.Dir(p), cmdline)
			}
		}
	}
}

// waitNoProcesses gives the clients' helpers (conmon, the shim) up to 10 s
// to exit after their container is removed.
func waitNoProcesses(t testing.TB, ids []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		left := false
		for _, id := range ids {
			if id != "" && len(findProcs(id)) > 0 {
				left = true
			}
		}
		if !left {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPodmanRootlessRuntimeCLI runs the runtime as a non-root user with a
// rootless config, as rootless podman invokes it (podman itself is not run
// rootless here: that needs a login user with subordinate id ranges). The
// kernel must allow unprivileged user namespaces.
func TestPodmanRootlessRuntimeCLI(t *testing.T) {
	if data, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(data)) == "0" {
		need(t, false, "the kernel forbids unprivileged user namespaces (kernel.unprivileged_userns_clone=0)")
	}
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		const nobody = 65534
		b := newBundle(t)
		b.Spec = spec.Default(true)
		// ToRootless maps to the euid of its caller (root, here).
		for i := range b.Spec.Linux.UIDMappings {
			b.Spec.Linux.UIDMappings[i].HostID = nobody
		}
		for i := range b.Spec.Linux.GIDMappings {
			b.Spec.Linux.GIDMappings[i].HostID = nobody
		}
		b.Spec.Process.Terminal = false
		b.Spec.Root.Readonly = false
		b.Spec.Process.Args = []string{"sh", "-c", "id -u; cat /proc/self/uid_map; echo written > /tmp/out; cat /tmp/out"}
		b.Save(t)
		state := filepath.Join(b.Dir, "state")
		if err := os.Mkdir(state, 0o700); err != nil {
			t.Fatal(err)
		}
		// Everything from the temp dir down belongs to nobody, and the
		// directories above it let nobody through.
		for d := b.Dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			os.Chmod(d, 0o755)
		}
		chownTree(t, b.Dir, nobody, nobody)
		os.Chmod(rt.Bin, 0o755)
		os.Chmod(filepath.Dir(rt.Bin), 0o777)
		cmd := exec.Command(rt.Bin, "--root", state, "run", "--bundle", b.Dir, "ctd-rootless")
		cmd.Dir = b.Dir
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + b.Dir, "XDG_RUNTIME_DIR=" + state}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("rootless run still running after 60s")
		}
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("rootless run: exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
		}
		if f := strings.Fields(stdout.String()); len(f) != 5 || f[0] != "0" || f[1] != "0" || f[2] != strconv.Itoa(nobody) || f[3] != "1" || f[4] != "written" {
			t.Errorf("rootless run: id, uid_map and a write: %q", stdout.String())
		}
		assertNoClientLeftovers(t, state, []string{"ctd-rootless"}, b.Dir)
	})
}

// parentPid returns pid's parent, or 0.
func parentPid(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

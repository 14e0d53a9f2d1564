package runtime

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/spec"
)

// The lifecycle's refusals carry error classes that callers (the CLI, the
// sandbox API) branch on with errors.Is, on both engines, whatever the
// message says. These run real containers, as root.
func TestLifecycleErrorClasses(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root (real containers)")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		skipOrFail(t, "needs busybox-static")
	}
	for _, kind := range []Engine{EngineNative, EngineGvisor} {
		t.Run(string(kind), func(t *testing.T) {
			if kind == EngineGvisor {
				if _, err := exec.LookPath("runsc"); err != nil {
					skipOrFail(t, "needs runsc")
				}
			}
			lifecycleClasses(t, kind, bb)
		})
	}
}

func lifecycleClasses(t *testing.T, kind Engine, busybox string) {
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	rootfs := filepath.Join(dir, "bundle", "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755)
	for _, a := range []string{"sh", "sleep"} {
		os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
	}
	s := spec.Default(false)
	s.Process.Terminal = false
	s.Process.Args = []string{"sleep", "60"}
	r, err := New(filepath.Join(dir, "root"), false, "auto")
	if err != nil {
		t.Fatal(err)
	}
	id := "classes-" + string(kind)
	o := CreateOptions{ID: id, Bundle: filepath.Join(dir, "bundle"), Spec: s, Engine: kind}
	if err := r.Create(o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Delete(id, true) })
	is := func(what string, err, class error) {
		t.Helper()
		if !errors.Is(err, class) {
			t.Errorf("%s: %v, want class %q", what, err, class)
		}
	}
	is("create of a taken id", r.Create(o), ErrExist)
	if err := r.Start(id); err != nil {
		t.Fatal(err)
	}
	is("start of a running container", r.Start(id), ErrRunning)
	is("delete of a running container", r.Delete(id, false), ErrRunning)
	is("resume of a running container", r.Resume(id), ErrNotPaused)
	if err := r.Pause(id); err != nil {
		t.Fatal(err)
	}
	_, err = r.Exec(id, ExecOptions{Args: []string{"true"}, Detach: true})
	is("exec into a paused container", err, ErrPaused)
	is("delete of a paused container", r.Delete(id, false), ErrPaused)
	if err := r.Resume(id); err != nil {
		t.Fatal(err)
	}
	if err := r.Kill(id, unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := r.State(id)
		if err == nil && st.Status == "stopped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not stop: %+v %v", id, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	is("start of a stopped container", r.Start(id), ErrStopped)
	_, err = r.Exec(id, ExecOptions{Args: []string{"true"}, Detach: true})
	is("exec into a stopped container", err, ErrStopped)
	if kind == EngineNative {
		is("kill of a stopped container", r.Kill(id, unix.SIGKILL, false), ErrNotRunning)
	} else {
		is("update of a gvisor container", r.Update(id, NewUpdateResources(), UpdateOptions{}), ErrUnsupported)
		is("checkpoint of a gvisor container", r.Checkpoint(id, CheckpointOptions{}), ErrUnsupported)
	}
	if err := r.Delete(id, false); err != nil {
		t.Fatal(err)
	}
	_, err = r.State(id)
	is("state of a deleted container", err, ErrNotExist)
}

// skipOrFail skips on a laptop without the prerequisite, fails in CI.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("prerequisite missing in CI: %s", why)
	}
	t.Skip(why)
}

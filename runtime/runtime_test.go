package runtime

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/spec"
	"golang.org/x/sys/unix"
)

func TestNewRuntime(t *testing.T) {
	if _, err := New("/", false, "auto"); err == nil || err.Error() != "root: must not be /" {
		t.Errorf("New(/) = %v", err)
	}
	if _, err := New("/tmp/x", false, "maybe"); err == nil || err.Error() != `rootless: "maybe": want true, false or auto` {
		t.Errorf("New(rootless maybe) = %v", err)
	}
	r, err := New("", false, "")
	if err != nil || r.Root != DefaultRoot {
		t.Errorf("New(\"\") = %+v, %v; want root %s", r, err, DefaultRoot)
	}
	r, err = New("rel/dir", false, "false")
	if err != nil || !filepath.IsAbs(r.Root) || !strings.HasSuffix(r.Root, "/rel/dir") {
		t.Errorf("New(rel/dir) = %+v, %v; want an absolute root", r, err)
	}
	if !systemdRunning() {
		_, err := New("/x", true, "auto")
		if err == nil || !strings.Contains(err.Error(), "systemd-cgroup: systemd is not running") {
			t.Errorf("New(systemd, without systemd) = %v", err)
		}
	}
}

// Commands that take an id reject a malformed one before touching the
// filesystem, so `delete --force ../x` can neither succeed silently nor
// reach outside --root.
func TestInvalidIDsRejected(t *testing.T) {
	r, err := New(t.TempDir(), false, "auto")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", ".", "..", "a/b", "../x", strings.Repeat("z", 300)} {
		calls := map[string]error{
			"delete":         r.Delete(id, false),
			"delete --force": r.Delete(id, true),
			"pause":          r.Pause(id),
			"resume":         r.Resume(id),
			"start":          r.Start(id),
			"kill":           r.Kill(id, unix.SIGKILL, false),
		}
		_, calls["state"] = r.State(id)
		calls["ps"] = r.Ps(id, PsOptions{Format: "json"}, io.Discard)
		_, calls["exec"] = r.Exec(id, ExecOptions{Args: []string{"true"}})
		for name, err := range calls {
			if err == nil {
				t.Errorf("%s %q: no error", name, id)
				continue
			}
			if errors.Is(err, ErrNotExist) || !strings.Contains(err.Error(), "container id") {
				t.Errorf("%s %q: %q, want an invalid-id error", name, id, err)
			}
		}
	}
	// A well-formed id that does not exist is ErrNotExist, except for a
	// forced delete, which succeeds.
	for name, err := range map[string]error{
		"delete": r.Delete("core-none", false),
		"pause":  r.Pause("core-none"),
		"resume": r.Resume("core-none"),
		"start":  r.Start("core-none"),
		"kill":   r.Kill("core-none", unix.SIGTERM, false),
	} {
		if !errors.Is(err, ErrNotExist) {
			t.Errorf("%s core-none: %v, want ErrNotExist", name, err)
		}
	}
	if err := r.Delete("core-none", true); err != nil {
		t.Errorf("delete --force core-none: %v", err)
	}
}

// A container in a mode is never restored: CRIU would bring its processes
// back without the pre-exec step, so without the mode's Landlock.
func TestRestoreRefusesAMode(t *testing.T) {
	r, err := New(t.TempDir(), false, "auto")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Restore(CreateOptions{ID: "rst", Spec: spec.Default(false), Policy: &policy.Plan{Mode: policy.ModeAgent}}, CheckpointOptions{})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("restore in agent mode: %v, want ErrUnsupported", err)
	}
}

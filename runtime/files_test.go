package runtime

import (
	"bytes"
	"errors"
	"testing"
)

// The error classes a Go caller of CopyIn/CopyOut branches on.
func TestCopyErrorClasses(t *testing.T) {
	r, err := New(t.TempDir(), false, "false")
	if err != nil {
		t.Fatal(err)
	}
	err = r.CopyIn("cp-nope", CopyOptions{HostPath: "/etc/hostname", ContainerPath: "/tmp"})
	if !errors.Is(err, ErrNotExist) {
		t.Errorf("CopyIn of an unknown id: %v, want ErrNotExist", err)
	}
	err = r.CopyOut("cp-nope", CopyOptions{ContainerPath: "/etc", Writer: &bytes.Buffer{}})
	if !errors.Is(err, ErrNotExist) {
		t.Errorf("CopyOut of an unknown id: %v, want ErrNotExist", err)
	}
	var oe *OptionError
	if err := r.CopyIn("cp-nope", CopyOptions{ContainerPath: "/tmp"}); !errors.As(err, &oe) {
		t.Errorf("CopyIn without a source: %v, want an OptionError", err)
	}
	if err := r.CopyOut("../x", CopyOptions{ContainerPath: "/", Writer: &bytes.Buffer{}}); err == nil {
		t.Error("CopyOut of a malformed id succeeded")
	}
}

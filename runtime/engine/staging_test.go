package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Two creates of one id: the second is refused while the first stages,
// instead of taking the first's staging for a crashed create's leftover
// and tearing it down; after the first's unlock, deleting cleans it.
func TestStagingLockedDuringCreate(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root (overlay mounts)")
		}
		t.Skip("needs root (overlay mounts)")
	}
	root := t.TempDir()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755)
	merged, release, unlock, err := StageRootfs(root, "st1", rootfs)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, _, _, err := StageRootfs(root, "st1", rootfs); !errors.Is(err, ErrExist) {
		t.Errorf("second create of a staging id: %v, want ErrExist", err)
	}
	if err := UnstageRootfs(root, "st1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(merged, "bin")); err != nil {
		t.Errorf("a delete removed a staging still being created: %v", err)
	}
	unlock()
	if err := UnstageRootfs(root, "st1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(merged)); err == nil {
		t.Error("staging left after unlock and delete")
	}
}

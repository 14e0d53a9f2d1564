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

// A state root below a directory other uids can't search (Docker keeps
// the runtime's root below 0700 directories) stages under StagingBase,
// where a user namespace's root reaches the rootfs; delete finds it there
// by the root, and the root's directory goes with its last staging.
func TestStagingOutsideUnreachableRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root (overlay mounts)")
		}
		t.Skip("needs root (overlay mounts)")
	}
	base := filepath.Join(t.TempDir(), "base")
	os.Chmod(filepath.Dir(base), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(base)), 0o755)
	defer func(old string) { StagingBase = old }(StagingBase)
	StagingBase = base
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(private, "runtime-runc", "moby")
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755)
	want, err := StagedRootfs(root, "st2")
	if err != nil {
		t.Fatal(err)
	}
	merged, release, unlock, err := StageRootfs(root, "st2", rootfs)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	unlock()
	if merged != want || filepath.Dir(filepath.Dir(filepath.Dir(merged))) != base {
		t.Fatalf("staged at %s (StagedRootfs said %s), want under %s", merged, want, base)
	}
	for d := filepath.Dir(merged); d != "/"; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm()&0o001 == 0 {
			t.Errorf("%s is not searchable by others: %v %v", d, st.Mode(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(merged, "bin")); err != nil {
		t.Errorf("staged rootfs: %v", err)
	}
	// A second container of the same root shares its directory.
	merged2, release2, unlock2, err := StageRootfs(root, "st3", rootfs)
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	unlock2()
	ReleaseStaged("st2", merged)
	if _, err := os.Stat(filepath.Dir(merged)); err == nil {
		t.Error("staging st2 left after its release")
	}
	if err := UnstageRootfs(root, "st3"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(merged2)); err == nil {
		t.Error("staging st3 left after unstage by its root")
	}
	if _, err := os.Stat(base); err == nil {
		t.Errorf("%s left after the last staging went", base)
	}
	// A root others can reach keeps staging in itself.
	reachable := filepath.Join(t.TempDir(), "x")
	if got := stagingParent(reachable); got != reachable {
		t.Errorf("a reachable root %s stages at %s", reachable, got)
	}
}
